// A chaos run: the informerd binary against a real etcd + kube-apiserver (test/cluster/) while
// everything that can break does, checked for lost, duplicated or invented events and for reads
// that mix two states. Shared by the bounded test (chaos_cluster_test.cc) and the soak program
// (test/soak/chaos_soak.cc), which differ only in their options.
//
// What runs:
//  * informerd, configured with one informer (configmaps, all namespaces), reaches the
//    apiserver through a FaultProxy (test/common/fault_proxy.h): its kubeconfig names the
//    proxy, which passes the TLS bytes through untouched (paced, so that a relist of the
//    ballast, more than a page of objects nobody changes, takes a while).
//  * Writers, one per namespace, straight to the apiserver (REST as admin, not through the
//    proxy): create, update, relabel (`app` between a and b) and delete configmaps at a steady
//    rate. Every write's result (uid, resourceVersion) is recorded; a write whose answer was lost
//    (the apiserver restarting under it) is resolved by reading the object back.
//  * Faults, one every fault_interval in rotation: a mid-stream cut of every proxied connection
//    (after a random number of bytes), a cut of all of them at once, an apiserver restart, an etcd
//    compaction at the current revision, and a compaction behind an outage (the proxy refusing
//    connections while writers go on): informerd's next watch then finds its version compacted
//    (410) and must relist.
//  * Subscribers over gRPC, each a client as the API asks clients to be: a reference one (all
//    namespaces) that never leaves on its own; churners (one namespace, or a label selector) that
//    leave, come back after a while resuming from their last version (a fresh snapshot after
//    OUT_OF_RANGE, or sometimes as a brand-new client); and a slow one on a connection with a
//    small HTTP/2 window that stops reading until it is ended with RESOURCE_EXHAUSTED, then
//    resumes.
//  * A reader polling List (all namespaces, then each namespace in turn).
//
// What is checked (ChaosReport::violations lists every failure; empty means it passed):
//  * Every stream is a valid history: versions never go backwards, a resumed stream starts after
//    its resume point, ADDED only of an object the client does not hold, MODIFIED and DELETED
//    only of one it holds (same UID), an object's own version only grows, never older than the
//    event's.
//  * Nothing lost or duplicated: each subscriber's events, over the versions where it and the
//    reference subscriber were both connected, are exactly the reference's events seen through
//    its filter (a label change across the selector as ADDED or DELETED), and each snapshot is
//    the reference's state at the snapshot's version through that filter. The reference itself
//    is checked against the writers' record: every event it shows is a write (or a deletion)
//    that happened, and every write at a version it covers is among its events unless a relist
//    (a version informerd logged as a list's) folded it into a later difference.
//  * No List returned a mixed state: every object's version is at most the List's, and the List
//    is exactly the reference's state at that version (for the namespace asked).
//  * At the end (writers stopped, one last write whose version informerd must reach): List
//    (with min_resource_version = that write's) and every subscriber's reconstructed state equal
//    `kubectl get configmaps -A -o json` (namespace/name, uid, resourceVersion).
//
// Threads: RunChaos blocks its caller and runs everything on threads of its own, joined before
// it returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "test/common/fault_proxy.h"

namespace informerd::test::chaos {

struct ChaosOptions {
  // How long writers, faults and churn go on (the checks and the settling come after).
  std::chrono::seconds duration{60};
  // kube-apiserver --watch-cache. Off, informerd's watches read etcd, so a compaction makes a
  // resumed watch fail with 410 (a relist); on, an apiserver restart does (the new watch cache
  // starts at the current version).
  bool watch_cache = false;
  int namespaces = 3;
  // Writes per second per namespace (one writer each).
  double writes_per_second = 3;
  // Objects per namespace: writers create below min_objects, delete above max_objects.
  int min_objects = 4;
  int max_objects = 20;
  // Objects created before informerd starts, in a namespace of their own, and never changed:
  // with more than a LIST page (informerd asks for 500), a relist takes two pages, so that Lists
  // can arrive while it has changed the cache and not finished.
  int ballast_objects = 900;
  // The proxy paces what it forwards to informerd to this many bytes a second per connection
  // (0: unpaced), so that a relist's pages take a while.
  std::size_t proxy_bytes_per_second = 256 << 10;
  // Bytes of filler in each object (sized so that the slow subscriber's window fills).
  std::size_t filler_bytes = 1200;
  // Between two faults (each waits this ± half at random).
  std::chrono::milliseconds fault_interval{5000};
  // How long a compaction's outage lasts (the proxy refusing informerd).
  std::chrono::milliseconds outage{4000};
  std::chrono::milliseconds poll_interval{200};
  // Subscribers that leave and come back (besides the reference and the slow one).
  int churners = 4;
  // How long a churner stays, and stays away (uniform between the bounds).
  std::chrono::milliseconds stay_min{2000}, stay_max{12000};
  std::chrono::milliseconds away_min{200}, away_max{8000};
  // Chance that a churner comes back as a new client (a fresh snapshot) rather than resuming.
  double fresh_join_probability = 0.15;
  // The slow subscriber stops reading (the first time 5 s after it started, then every
  // slow_period) until the reference subscriber has received slow_pause_events more events (far
  // more than its queue capacity and its HTTP/2 window hold) or slow_pause has passed.
  int slow_pause_events = 150;
  std::chrono::milliseconds slow_pause{60000};
  std::chrono::milliseconds slow_period{30000};
  // informerd's subscriberQueueCapacity.
  int queue_capacity = 32;
  std::uint64_t seed = 1;
  // Progress lines (each fault, periodic figures); nullptr for none.
  std::ostream* progress = nullptr;
  // A line with informerd's RSS, fds and the counts so far every this long (0: never).
  std::chrono::seconds progress_interval{0};
  // How long the end may take to converge (informerd reaching the last write, each subscriber's
  // state equal to kubectl's).
  std::chrono::seconds settle_timeout{90};
  // If not empty, informerd's log is written there (informerd.log) at the end, and the
  // apiserver's (kube-apiserver.log).
  std::string log_dir;
};

// informerd's resident set and open descriptors (/proc), at one moment of the run.
struct ProcessSample {
  double seconds = 0;  // since informerd started
  long rss_kib = 0;
  int fds = 0;
};

struct ChaosReport {
  // The writers.
  std::uint64_t creates = 0, updates = 0, relabels = 0, deletes = 0;
  // Writes whose answer was lost and were resolved by reading the object back.
  std::uint64_t writes_resolved = 0;
  // The faults.
  int apiserver_restarts = 0;
  int compactions = 0;         // all, including those behind an outage
  int compaction_outages = 0;  // compactions while the proxy refused informerd
  int mid_stream_cut_rounds = 0, cut_all_rounds = 0;
  FaultProxy::Counts proxy;
  // informerd's /metrics at the end (configmaps): relists by reason, watch restarts, upstream
  // events by type, events applied to the cache and delivered to subscribers, subscribers ended
  // for falling behind.
  std::map<std::string, double> relists;
  double watch_restarts = 0;
  double upstream_events = 0;
  double events_applied = 0;
  double events_delivered = 0;
  double fell_behind_metric = 0;
  // The subscribers.
  int subscribers = 0;
  std::uint64_t events_received = 0;   // by every subscriber (SYNCED and BOOKMARK excluded)
  std::uint64_t reference_events = 0;  // by the reference one
  int streams = 0, snapshots = 0, resumes = 0, out_of_range = 0, fell_behind = 0, left = 0,
      fresh_joins = 0, unavailable = 0;
  // The List reader.
  int lists_ok = 0, lists_unavailable = 0, lists_failed = 0;
  // Lists that took 250 ms or more (waiting while a relist changed the cache, typically), and
  // the longest one's time.
  int lists_slow = 0;
  long longest_list_ms = 0;
  // What the checks covered.
  int lists_checked = 0;             // against the reference's state at their version
  int epochs_checked = 0;            // subscriber histories compared with the reference's
  int snapshots_checked = 0;         // subscriber snapshots compared with the reference's state
  std::uint64_t writes_checked = 0;  // writes found (or folded by a relist) in the reference
  std::uint64_t lost = 0, duplicated = 0;
  // The last write's version, informerd's List version and kubectl's at the end.
  std::string final_write_version, final_list_version, kubectl_version;
  std::uint64_t final_objects = 0;
  std::vector<ProcessSample> samples;  // informerd's RSS and fds: after start-up, ..., at the end
  std::vector<std::string> violations;

  // Several lines: every figure above, then the violations (at most 50).
  std::string Summary() const;
};

ChaosReport RunChaos(const ChaosOptions& options);

}  // namespace informerd::test::chaos
