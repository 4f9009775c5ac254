// The chaos run's checks on histories written by hand: each kind of fault they exist to catch
// (a lost event, a duplicate, a mixed List, a write never delivered, an invented one) is caught,
// and what informerd legitimately does (relist differences sharing the list's version, label
// changes across a selector, resuming, re-snapshotting) is not reported.
#include "test/e2e/chaos_history.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace informerd::test::chaos {
namespace {

struct World {
  Names names;
  Findings findings{names};
  const uint32_t ns1 = names.Id("ns1");
  const uint32_t ns2 = names.Id("ns2");

  uint32_t Key(uint32_t ns, const std::string& name) {
    return names.Id(names.Name(ns) + "/" + name);
  }
  Obj O(uint32_t ns, const std::string& uid, uint64_t rv, uint8_t app = 1) {
    return Obj{ns, names.Id(uid), rv, app};
  }
  static Ev E(char type, uint32_t key, Obj obj, uint64_t rv) { return Ev{type, key, obj, rv}; }
  static Ev Synced(uint64_t rv) { return Ev{'S', 0, {}, rv}; }
  static Ev Bookmark(uint64_t rv) { return Ev{'B', 0, {}, rv}; }
  std::string Violations() {
    std::string all;
    for (const std::string& v : findings.violations()) all += v + "\n";
    return all;
  }
};

TEST_CASE("ClientHistory: snapshot, live events and a resume are a valid history") {
  World w;
  const uint32_t a = w.Key(w.ns1, "a"), b = w.Key(w.ns1, "b"), c = w.Key(w.ns1, "c");
  ClientHistory client("c1", Filter{}, w.findings);
  CHECK(client.BeginStream().empty());
  client.Receive(World::E('A', a, w.O(w.ns1, "ua", 5), 5));
  client.Receive(World::E('A', b, w.O(w.ns1, "ub", 8), 8));
  CHECK_FALSE(client.holds());
  client.Receive(World::Synced(10));
  CHECK(client.holds());
  client.Receive(World::E('M', a, w.O(w.ns1, "ua", 11), 11));
  client.Receive(World::E('D', b, w.O(w.ns1, "ub", 12), 12));
  client.Receive(World::E('A', c, w.O(w.ns1, "uc", 13), 13));
  // Gone and back: resumes after the last event.
  CHECK(client.BeginStream() == "13");
  client.Receive(World::Bookmark(13));
  client.Receive(World::E('M', c, w.O(w.ns1, "uc", 14), 14));
  // A relist's differences share the list's version; objects keep their own.
  client.Receive(World::E('M', a, w.O(w.ns1, "ua", 16), 20));
  client.Receive(World::E('D', c, w.O(w.ns1, "uc", 14), 20));
  client.Receive(World::E('A', b, w.O(w.ns1, "ub2", 18), 20));
  INFO(w.Violations());
  CHECK(w.findings.violation_count() == 0);
  REQUIRE(client.epochs().size() == 1);
  const Epoch& epoch = client.epochs()[0];
  CHECK(epoch.start == 10);
  CHECK(epoch.end == 20);
  CHECK(epoch.initial.size() == 2);
  CHECK(epoch.events.size() == 7);
  CHECK(client.state() == State{{a, w.O(w.ns1, "ua", 16)}, {b, w.O(w.ns1, "ub2", 18)}});
  CHECK(client.events() == 9);
}

TEST_CASE("ClientHistory: duplicates, unknown objects and versions going back are violations") {
  World w;
  const uint32_t a = w.Key(w.ns1, "a"), b = w.Key(w.ns1, "b");
  ClientHistory client("c1", Filter{}, w.findings);
  client.BeginStream();
  client.Receive(World::E('A', a, w.O(w.ns1, "ua", 5), 5));
  client.Receive(World::Synced(10));
  client.Receive(World::E('M', a, w.O(w.ns1, "ua", 11), 11));
  REQUIRE(w.findings.violation_count() == 0);

  SECTION("an event replayed after a resume") {
    CHECK(client.BeginStream() == "11");
    client.Receive(World::E('M', a, w.O(w.ns1, "ua", 11), 11));
    CHECK(w.findings.duplicated() >= 1);
  }
  SECTION("the same ADDED twice") {
    client.Receive(World::E('A', b, w.O(w.ns1, "ub", 12), 12));
    client.Receive(World::E('A', b, w.O(w.ns1, "ub", 12), 13));
    CHECK(w.findings.duplicated() >= 1);
  }
  SECTION("DELETED of an object not held") {
    client.Receive(World::E('D', b, w.O(w.ns1, "ub", 12), 12));
    CHECK(w.findings.duplicated() == 1);
  }
  SECTION("MODIFIED to an older version") {
    client.Receive(World::E('M', a, w.O(w.ns1, "ua", 9), 12));
  }
  SECTION("MODIFIED of an object not held") {
    client.Receive(World::E('M', b, w.O(w.ns1, "ub", 12), 12));
  }
  SECTION("a version going back") { client.Receive(World::E('A', b, w.O(w.ns1, "ub", 10), 10)); }
  SECTION("SYNCED on a live stream") { client.Receive(World::Synced(12)); }
  SECTION("an object newer than its event") {
    client.Receive(World::E('A', b, w.O(w.ns1, "ub", 13), 12));
  }
  SECTION("an object outside the filter") {
    ClientHistory filtered("c2", Filter{w.ns2, 0}, w.findings);
    filtered.BeginStream();
    filtered.Receive(World::E('A', a, w.O(w.ns1, "ua", 5), 5));
  }
  SECTION("a snapshot object newer than its SYNCED") {
    ClientHistory other("c2", Filter{}, w.findings);
    other.BeginStream();
    other.Receive(World::E('A', a, w.O(w.ns1, "ua", 11), 11));
    other.Receive(World::Synced(10));
  }
  INFO(w.Violations());
  CHECK(w.findings.violation_count() >= 1);
}

TEST_CASE("ClientHistory: OUT_OF_RANGE and a new client start a new epoch from a snapshot") {
  World w;
  const uint32_t a = w.Key(w.ns1, "a");
  ClientHistory client("c1", Filter{}, w.findings);
  client.BeginStream();
  client.Receive(World::E('A', a, w.O(w.ns1, "ua", 5), 5));
  client.Receive(World::Synced(10));
  client.OutOfRange();
  CHECK(client.BeginStream().empty());
  client.Receive(World::E('A', a, w.O(w.ns1, "ua", 15), 15));  // the snapshot replaces the state
  client.Receive(World::Synced(20));
  client.Forget();
  CHECK(client.state().empty());
  CHECK(client.BeginStream().empty());
  client.Receive(World::E('A', a, w.O(w.ns1, "ua", 15), 15));  // seen before: fine in a snapshot
  client.Receive(World::Synced(21));
  INFO(w.Violations());
  CHECK(w.findings.violation_count() == 0);
  REQUIRE(client.epochs().size() == 3);
  CHECK(client.epochs()[1].start == 20);
  CHECK(client.epochs()[2].start == 21);
}

TEST_CASE(
    "Replay: a label change across the selector is ADDED or DELETED with the state that "
    "matched") {
  World w;
  const uint32_t a = w.Key(w.ns1, "a");
  Epoch reference;
  reference.start = 10;
  reference.initial = {{a, w.O(w.ns1, "ua", 5, /*app=*/1)}};
  reference.events = {
      World::E('M', a, w.O(w.ns1, "ua", 11, 2), 11), World::E('M', a, w.O(w.ns1, "ua", 12, 2), 12),
      World::E('M', a, w.O(w.ns1, "ua", 13, 1), 13), World::E('D', a, w.O(w.ns1, "ua", 14, 1), 14)};
  reference.end = 14;
  std::vector<State> states;
  const std::vector<Ev> view =
      Replay(reference, Filter{kAllNamespaces, 1}, {10, 11, 13, 14},
             [&](std::size_t, const State& state) { states.push_back(state); });
  const std::vector<Ev> expected = {World::E('D', a, w.O(w.ns1, "ua", 5, 1), 11),
                                    World::E('A', a, w.O(w.ns1, "ua", 13, 1), 13),
                                    World::E('D', a, w.O(w.ns1, "ua", 14, 1), 14)};
  CHECK(view == expected);
  REQUIRE(states.size() == 4);
  CHECK(states[0].size() == 1);
  CHECK(states[1].empty());
  CHECK(states[2].size() == 1);
  CHECK(states[3].empty());
}

// A reference history with a relist at 20 (its differences share that version) and a
// subscriber of ns1 that followed it.
struct TwoClients {
  World w;
  const uint32_t a = w.Key(w.ns1, "a"), b = w.Key(w.ns1, "b"), x = w.Key(w.ns2, "x");
  Epoch reference;
  Epoch subscriber;

  TwoClients() {
    reference.start = 10;
    reference.initial = {{a, w.O(w.ns1, "ua", 5)}, {x, w.O(w.ns2, "ux", 6)}};
    reference.events = {
        World::E('A', b, w.O(w.ns1, "ub", 11), 11), World::E('M', x, w.O(w.ns2, "ux", 12), 12),
        World::E('M', a, w.O(w.ns1, "ua", 13), 13),
        // The relist: a changed twice unseen, x deleted unseen.
        World::E('M', a, w.O(w.ns1, "ua", 17), 20), World::E('D', x, w.O(w.ns2, "ux", 12), 20),
        World::E('D', b, w.O(w.ns1, "ub", 21), 21)};
    reference.end = 21;
    subscriber.start = 12;
    subscriber.initial = {{a, w.O(w.ns1, "ua", 5)}, {b, w.O(w.ns1, "ub", 11)}};
    subscriber.events = {World::E('M', a, w.O(w.ns1, "ua", 13), 13),
                         World::E('M', a, w.O(w.ns1, "ua", 17), 20),
                         World::E('D', b, w.O(w.ns1, "ub", 21), 21)};
    subscriber.end = 21;
  }
  Checker MakeChecker() { return Checker({reference}, {10, 20}, {w.ns1, w.ns2}, w.findings); }
};

TEST_CASE("Checker: a subscriber that saw exactly the reference's events through its filter") {
  TwoClients t;
  Checker checker = t.MakeChecker();
  const Checker::Compared compared =
      checker.CheckSubscriber("s", Filter{t.w.ns1, 0}, {t.subscriber});
  INFO(t.w.Violations());
  CHECK(t.w.findings.violation_count() == 0);
  CHECK(compared.epochs == 1);
  CHECK(compared.snapshots == 1);
}

TEST_CASE("Checker: a lost event, a duplicated one and a wrong snapshot are reported") {
  TwoClients t;
  Checker checker = t.MakeChecker();
  SECTION("lost") {
    t.subscriber.events.erase(t.subscriber.events.begin());
    checker.CheckSubscriber("s", Filter{t.w.ns1, 0}, {t.subscriber});
    CHECK(t.w.findings.lost() == 1);
    CHECK(t.w.findings.duplicated() == 0);
  }
  SECTION("duplicated") {
    t.subscriber.events.insert(t.subscriber.events.begin() + 1, t.subscriber.events[0]);
    checker.CheckSubscriber("s", Filter{t.w.ns1, 0}, {t.subscriber});
    CHECK(t.w.findings.lost() == 0);
    CHECK(t.w.findings.duplicated() == 1);
  }
  SECTION("the snapshot") {
    t.subscriber.initial.erase(t.b);
    checker.CheckSubscriber("s", Filter{t.w.ns1, 0}, {t.subscriber});
  }
  SECTION("another object's event") {
    t.subscriber.events[1].obj.rv = 16;
    checker.CheckSubscriber("s", Filter{t.w.ns1, 0}, {t.subscriber});
    CHECK(t.w.findings.lost() == 1);
    CHECK(t.w.findings.duplicated() == 1);
  }
  INFO(t.w.Violations());
  CHECK(t.w.findings.violation_count() >= 1);
}

TEST_CASE("Checker: a subscriber cut off in the middle of a relist is compared below it") {
  TwoClients t;
  // All namespaces; it received the first of the relist's two differences only, then had to
  // take a new snapshot: x's DELETED at 20 never reached it, and that is no loss.
  t.subscriber.initial[t.x] = t.w.O(t.w.ns2, "ux", 12);
  t.subscriber.events.pop_back();
  t.subscriber.end = 20;
  Checker checker = t.MakeChecker();
  const Checker::Compared compared = checker.CheckSubscriber("s", Filter{}, {t.subscriber});
  INFO(t.w.Violations());
  CHECK(t.w.findings.violation_count() == 0);
  CHECK(compared.epochs == 1);
  // Had it ended at 21 without that DELETED, it would be a loss.
  t.subscriber.events.push_back(World::E('D', t.b, t.w.O(t.w.ns1, "ub", 21), 21));
  t.subscriber.end = 21;
  checker.CheckSubscriber("s", Filter{}, {t.subscriber});
  CHECK(t.w.findings.lost() == 1);
}

TEST_CASE("Checker: each List is the reference's state at its version, or reported") {
  TwoClients t;
  Checker checker = t.MakeChecker();
  ListRecord all12{12, Filter{}, {}};
  all12.items = {{t.a, t.w.O(t.w.ns1, "ua", 5)},
                 {t.b, t.w.O(t.w.ns1, "ub", 11)},
                 {t.x, t.w.O(t.w.ns2, "ux", 12)}};
  ListRecord ns1_at_20{20, Filter{t.w.ns1, 0}, {}};
  ns1_at_20.items = {{t.a, t.w.O(t.w.ns1, "ua", 17)}, {t.b, t.w.O(t.w.ns1, "ub", 11)}};
  ListRecord before{9, Filter{}, {}};  // before the reference's start: not compared
  CHECK(checker.CheckLists({all12, ns1_at_20, before}) == 2);
  INFO(t.w.Violations());
  CHECK(t.w.findings.violation_count() == 0);

  // A List during the relist: a's new state with x not yet deleted, at the old version.
  ListRecord mixed{13, Filter{}, {}};
  mixed.items = {{t.a, t.w.O(t.w.ns1, "ua", 17)},
                 {t.b, t.w.O(t.w.ns1, "ub", 11)},
                 {t.x, t.w.O(t.w.ns2, "ux", 12)}};
  CHECK(checker.CheckLists({mixed}) == 1);
  CHECK(t.w.findings.violation_count() == 1);
}

TEST_CASE("Checker: the reference against the writers' record") {
  TwoClients t;
  World& w = t.w;
  std::vector<Write> writes = {{'C', t.a, w.O(w.ns1, "ua", 5)},
                               {'C', t.x, w.O(w.ns2, "ux", 6)},
                               {'C', t.b, w.O(w.ns1, "ub", 11)},
                               {'U', t.x, w.O(w.ns2, "ux", 12)},
                               {'U', t.a, w.O(w.ns1, "ua", 13)},
                               // While informerd could not watch: folded into the relist at 20.
                               {'U', t.a, w.O(w.ns1, "ua", 15)},
                               {'L', t.a, w.O(w.ns1, "ua", 17)},
                               {'D', t.x, w.O(w.ns2, "ux", 12)},
                               // Created and deleted unseen before the relist.
                               {'C', w.Key(w.ns1, "gone"), w.O(w.ns1, "ugone", 18)},
                               {'D', w.Key(w.ns1, "gone"), w.O(w.ns1, "ugone", 18)},
                               {'D', t.b, w.O(w.ns1, "ub", 11)}};
  SECTION("everything accounted for") {
    Checker checker = t.MakeChecker();
    CHECK(checker.CheckAgainstWrites(writes) == 6);
    INFO(w.Violations());
    CHECK(w.findings.violation_count() == 0);
  }
  SECTION("a write the reference never received") {
    writes.push_back({'U', t.b, w.O(w.ns1, "ub", 19)});
    Checker checker = t.MakeChecker();
    checker.CheckAgainstWrites(writes);
    CHECK(w.findings.lost() == 1);
  }
  SECTION("a write missing where informerd was watching (no relist after it)") {
    Checker checker({t.reference}, {10}, {w.ns1, w.ns2}, w.findings);
    // Without the relist at 20 in the daemon's log, the shared version still marks it.
    checker.CheckAgainstWrites(writes);
    INFO(w.Violations());
    CHECK(w.findings.violation_count() == 0);
    writes.push_back({'U', t.b, w.O(w.ns1, "ub", 14)});
    checker.CheckAgainstWrites(writes);
    CHECK(w.findings.lost() == 1);
  }
  SECTION("an event no write made") {
    writes.erase(writes.begin() + 4);  // a's update at 13
    Checker checker = t.MakeChecker();
    checker.CheckAgainstWrites(writes);
    CHECK(w.findings.violation_count() >= 1);
  }
  SECTION("a deletion no writer made") {
    writes.pop_back();
    Checker checker = t.MakeChecker();
    checker.CheckAgainstWrites(writes);
    CHECK(w.findings.violation_count() == 1);
  }
}

}  // namespace
}  // namespace informerd::test::chaos
