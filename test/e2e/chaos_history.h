// The bookkeeping and the checks of the chaos run (chaos_run.h), apart from any I/O so that
// they can be tested on histories written by hand (chaos_history_test.cc): what a client of
// Subscribe holds as its stream arrives, and the comparisons of every history with the
// reference subscriber's and with the writers' record.
//
// Vocabulary. A key is "namespace/name"; names, namespaces and UIDs are interned (Names) so
// that an hour's histories stay small. An epoch is a stretch of one client's history with no
// gap: a snapshot (the state at its SYNCED version), then every event after it, across any
// number of resumed streams, up to the last version received. A fresh snapshot (after
// OUT_OF_RANGE, or a new client) starts a new epoch.
//
// Threads: Names and Findings are thread-safe. ClientHistory and Checker are not; the chaos run
// guards each ClientHistory with its subscriber's mutex and checks after every thread stopped.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace informerd::test::chaos {

// Strings as small numbers.
class Names {
 public:
  uint32_t Id(const std::string& text);
  std::string Name(uint32_t id) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::deque<std::string> names_;
};

// Filter::ns for all namespaces.
constexpr uint32_t kAllNamespaces = UINT32_MAX;

// One object as a client holds it: what the checks compare (namespace, UID, resourceVersion,
// and the label the selectors use).
struct Obj {
  uint32_t ns = 0;
  uint32_t uid = 0;
  uint64_t rv = 0;
  uint8_t app = 0;  // the `app` label: 0 absent, 1 "a", 2 "b", 3 anything else
  bool operator==(const Obj& other) const {
    return ns == other.ns && uid == other.uid && rv == other.rv && app == other.app;
  }
  bool operator!=(const Obj& other) const { return !(*this == other); }
};
// By key.
using State = std::map<uint32_t, Obj>;

// "a" → 1, "b" → 2, anything else → 3.
uint8_t AppCode(const std::string& value);

// One event as received.
struct Ev {
  char type = '?';  // 'A' ADDED, 'M' MODIFIED, 'D' DELETED, 'B' BOOKMARK, 'S' SYNCED
  uint32_t key = 0;
  Obj obj;          // the event's object (for D, the last state, as the API says)
  uint64_t rv = 0;  // the event's version
  bool operator==(const Ev& other) const {
    return type == other.type && key == other.key && obj.uid == other.obj.uid && rv == other.rv &&
           obj.rv == other.obj.rv;
  }
};

// Which objects a subscriber (or a List) asks for: a namespace and `app=<a|b>`.
struct Filter {
  uint32_t ns = kAllNamespaces;
  uint8_t app = 0;  // 0: no selector
  bool Match(const Obj& obj) const {
    return (ns == kAllNamespaces || obj.ns == ns) && (app == 0 || obj.app == app);
  }
};
State Filtered(const State& state, const Filter& filter);

struct Epoch {
  uint64_t start = 0;      // the SYNCED version
  State initial;           // the snapshot: the state at `start`
  std::vector<Ev> events;  // ADDED, MODIFIED, DELETED after `start`, in order
  uint64_t end = 0;        // the last version received (an event's or a bookmark's)
};

// A write the writers made. For deletions, `obj` is the object deleted as last written.
struct Write {
  char op = '?';  // 'C' create, 'U' update, 'L' relabel, 'D' delete
  uint32_t key = 0;
  Obj obj;
};

// A List's answer (namespace filter only).
struct ListRecord {
  uint64_t rv = 0;
  Filter filter;
  State items;
};

// Where the checks report. Thread-safe. Keeps the first 200 violations (and counts them all).
class Findings {
 public:
  // `echo`, if set, is told each violation as it is found.
  explicit Findings(Names& names, std::function<void(const std::string&)> echo = nullptr)
      : names_(names), echo_(std::move(echo)) {}

  void Violation(std::string what);
  void AddLost(uint64_t count);
  void AddDuplicated(uint64_t count);

  // The kept violations, then "... and N more" if some were not kept.
  std::vector<std::string> violations() const;
  std::size_t violation_count() const;
  uint64_t lost() const;
  uint64_t duplicated() const;

  Names& names() { return names_; }
  // "ns/name uid=U rv=5 app=1"; "A ns/name ... at 7"; "S rv=9".
  std::string Describe(uint32_t key, const Obj& obj) const;
  std::string Describe(const Ev& ev) const;
  // The first 10 objects, then how many more.
  std::string Describe(const State& state) const;
  // What `got` lacks (or has differently) and what it has that `want` does not.
  std::string DescribeDifference(const State& got, const State& want) const;

 private:
  Names& names_;
  const std::function<void(const std::string&)> echo_;
  mutable std::mutex mu_;
  std::vector<std::string> violations_;  // guarded by mu_
  std::size_t count_ = 0;                // guarded by mu_
  uint64_t lost_ = 0, duplicated_ = 0;   // guarded by mu_
};

// A client of Subscribe as the API asks clients to be: it resumes from the version of the last
// event it received (once it holds a snapshot), and takes a fresh snapshot after OUT_OF_RANGE
// or when a stream broke before its SYNCED. Each event is checked as it arrives:
//  * a live event's version is never older than the one before, and the first after the resume
//    point (or the SYNCED) is newer than it; no SYNCED on a live stream;
//  * ADDED only of an object not held, MODIFIED and DELETED only of one held, with its UID;
//  * an object's own version is never newer than its event's; a MODIFIED's object is newer than the
//  one held; an ADDED's newer than any version of that UID
//    seen before (in a snapshot: not older); a DELETED's not older than the one held;
//  * every ADDED or MODIFIED object matches the filter;
//  * every snapshot object is no newer than its SYNCED.
// Each failure is a violation (a repeated version also counts as a duplicate).
class ClientHistory {
 public:
  ClientHistory(std::string name, Filter filter, Findings& findings)
      : name_(std::move(name)), filter_(filter), findings_(findings) {}

  // A stream starts: the version to resume from, or "" for a snapshot.
  std::string BeginStream();
  // The stream delivered `ev`.
  void Receive(const Ev& ev);
  // The stream ended OUT_OF_RANGE: the next one takes a snapshot.
  void OutOfRange();
  // The client starts over as a new one: nothing held, the next stream takes a snapshot.
  void Forget();

  // Whether the client holds a complete state (and so a version to resume from).
  bool holds() const { return holds_; }
  uint64_t last_version() const { return last_rv_; }
  const State& state() const { return state_; }
  const std::vector<Epoch>& epochs() const { return epochs_; }
  const std::string& name() const { return name_; }
  const Filter& filter() const { return filter_; }
  // Events received (ADDED, MODIFIED, DELETED, snapshots included).
  uint64_t events() const { return events_; }

 private:
  void Apply(State& state, const Ev& ev, bool in_snapshot);

  const std::string name_;
  const Filter filter_;
  Findings& findings_;
  bool holds_ = false;
  uint64_t last_rv_ = 0;
  State state_;
  std::vector<Epoch> epochs_;
  std::unordered_map<uint32_t, uint64_t> max_seen_;  // UID → the newest version seen
  uint64_t events_ = 0;
  // The stream under way.
  bool in_snapshot_ = false;
  State taking_;        // the snapshot so far
  uint64_t floor_ = 0;  // the resume point, then the SYNCED version
  bool first_ = true;   // no live event yet
};

// The reference's epoch `reference` seen through `filter`: the events a subscriber with that
// filter must receive (an object whose labels change across the selector arrives as ADDED, or
// as DELETED carrying the state that matched, at the change's version); and, for each of
// `points` (sorted; versions within the epoch), the filtered state after every event up to that
// version, given to `at_point` with the point's index.
std::vector<Ev> Replay(const Epoch& reference, const Filter& filter,
                       const std::vector<uint64_t>& points,
                       const std::function<void(std::size_t, const State&)>& at_point);

// The comparisons with the reference subscriber (all namespaces, no selector, never leaving on
// its own) and with the writers' record.
//
// A relist's differences all carry the list's version, so a version can hold several events;
// such versions are relists' (the daemon logs each list's: `list_versions`), and versions shared
// by several of the reference's events are added to them. Where a history may hold only part of
// a relist's events (its last version, on an epoch that broke off), that version is left out of
// the comparison.
class Checker {
 public:
  Checker(std::vector<Epoch> reference, std::set<uint64_t> list_versions,
          std::set<uint32_t> written_namespaces, Findings& findings);

  // Each List is exactly the reference's state at the List's version (for its namespace), when
  // a reference epoch covers that version. Returns how many were compared.
  int CheckLists(const std::vector<ListRecord>& lists);

  // A subscriber's epochs: each snapshot is the reference's state at its version through the
  // filter, and the events, over the versions both cover, are exactly the reference's through
  // the filter (missing ones count as lost, extra ones as duplicated).
  struct Compared {
    int epochs = 0;
    int snapshots = 0;
  };
  Compared CheckSubscriber(const std::string& name, const Filter& filter,
                           const std::vector<Epoch>& epochs);

  // The reference against the writes in `written_namespaces`: every object it holds or receives
  // was written exactly so (key, UID, version), every DELETED is of a UID a writer deleted, and
  // every write at a version its epoch covers is among its events, unless a relist folded it
  // (the object's next event is a relist's difference, or the object was created and deleted
  // before a relist and never seen). Returns how many writes were looked for.
  uint64_t CheckAgainstWrites(const std::vector<Write>& writes);

  const std::set<uint64_t>& list_versions() const { return list_versions_; }

 private:
  // Whether reference epoch `i` holds every event up to `v` (and `v` is not before its start).
  bool Covers(std::size_t i, uint64_t v) const;
  std::optional<std::size_t> EpochCovering(uint64_t v) const;

  const std::vector<Epoch> reference_;
  std::set<uint64_t> list_versions_;
  const std::set<uint32_t> written_namespaces_;
  Findings& findings_;
};

}  // namespace informerd::test::chaos
