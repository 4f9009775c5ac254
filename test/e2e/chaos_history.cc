#include "test/e2e/chaos_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <tuple>

namespace informerd::test::chaos {

uint32_t Names::Id(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = ids_.emplace(text, static_cast<uint32_t>(names_.size()));
  if (inserted) names_.push_back(text);
  return it->second;
}

std::string Names::Name(uint32_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return id < names_.size() ? names_[id] : "?";
}

uint8_t AppCode(const std::string& value) {
  if (value == "a") return 1;
  if (value == "b") return 2;
  return 3;
}

State Filtered(const State& state, const Filter& filter) {
  State out;
  for (const auto& [key, obj] : state) {
    if (filter.Match(obj)) out.emplace(key, obj);
  }
  return out;
}

// ---- Findings ---------------------------------------------------------------------------

void Findings::Violation(std::string what) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    if (violations_.size() < 200) violations_.push_back(what);
  }
  if (echo_) echo_(what);
}

void Findings::AddLost(uint64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  lost_ += count;
}

void Findings::AddDuplicated(uint64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  duplicated_ += count;
}

std::vector<std::string> Findings::violations() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out = violations_;
  if (count_ > violations_.size()) {
    out.push_back(fmt::format("... and {} more", count_ - violations_.size()));
  }
  return out;
}

std::size_t Findings::violation_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

uint64_t Findings::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

uint64_t Findings::duplicated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return duplicated_;
}

std::string Findings::Describe(uint32_t key, const Obj& obj) const {
  return fmt::format("{} uid={} rv={} app={}", names_.Name(key), names_.Name(obj.uid), obj.rv,
                     static_cast<int>(obj.app));
}

std::string Findings::Describe(const Ev& ev) const {
  if (ev.type == 'B' || ev.type == 'S') return fmt::format("{} rv={}", ev.type, ev.rv);
  return fmt::format("{} {} at {}", ev.type, Describe(ev.key, ev.obj), ev.rv);
}

std::string Findings::Describe(const State& state) const {
  std::vector<std::string> parts;
  for (const auto& [key, obj] : state) {
    if (parts.size() == 10) {
      parts.push_back(fmt::format("and {} more", state.size() - 10));
      break;
    }
    parts.push_back(Describe(key, obj));
  }
  return fmt::format("{}", fmt::join(parts, "; "));
}

std::string Findings::DescribeDifference(const State& got, const State& want) const {
  State missing, extra;
  for (const auto& [key, obj] : want) {
    auto it = got.find(key);
    if (it == got.end() || it->second != obj) missing[key] = obj;
  }
  for (const auto& [key, obj] : got) {
    auto it = want.find(key);
    if (it == want.end() || it->second != obj) extra[key] = obj;
  }
  return fmt::format("missing or different [{}], unexpected [{}]", Describe(missing),
                     Describe(extra));
}

// ---- ClientHistory ----------------------------------------------------------------------

std::string ClientHistory::BeginStream() {
  in_snapshot_ = !holds_;
  taking_.clear();
  floor_ = last_rv_;
  first_ = true;
  return holds_ ? std::to_string(last_rv_) : "";
}

void ClientHistory::OutOfRange() { holds_ = false; }

void ClientHistory::Forget() {
  holds_ = false;
  state_.clear();
}

void ClientHistory::Receive(const Ev& ev) {
  if (ev.type != 'S' && ev.type != 'B') ++events_;
  if (in_snapshot_) {
    if (ev.type == 'S') {
      for (const auto& [key, obj] : taking_) {
        if (obj.rv > ev.rv) {
          findings_.Violation(fmt::format("{}: snapshot object {} newer than its SYNCED at {}",
                                          name_, findings_.Describe(key, obj), ev.rv));
        }
      }
      Epoch epoch;
      epoch.start = epoch.end = ev.rv;
      epoch.initial = taking_;
      epochs_.push_back(std::move(epoch));
      state_ = std::move(taking_);
      taking_.clear();
      last_rv_ = floor_ = ev.rv;
      holds_ = true;
      in_snapshot_ = false;
    } else if (ev.type != 'B') {
      Apply(taking_, ev, /*in_snapshot=*/true);
    }
    return;
  }
  if (ev.type == 'S') {
    findings_.Violation(fmt::format("{}: SYNCED at {} on a live stream", name_, ev.rv));
    return;
  }
  // The first event after the resume point (or SYNCED) is newer than it; later ones are never
  // older than the one before (a relist's differences share the list's version).
  if (first_ ? (ev.type == 'B' ? ev.rv < floor_ : ev.rv <= floor_) : ev.rv < last_rv_) {
    findings_.Violation(fmt::format("{}: {} after {}{}", name_, findings_.Describe(ev),
                                    first_ ? floor_ : last_rv_,
                                    first_ ? " (its resume point or SYNCED)" : ""));
    if (ev.type != 'B' && ev.rv <= last_rv_) findings_.AddDuplicated(1);
  }
  if (ev.type != 'B') first_ = false;
  last_rv_ = std::max(last_rv_, ev.rv);
  epochs_.back().end = last_rv_;
  if (ev.type == 'B') return;
  Apply(state_, ev, /*in_snapshot=*/false);
  epochs_.back().events.push_back(ev);
}

void ClientHistory::Apply(State& state, const Ev& ev, bool in_snapshot) {
  auto violation = [&](const char* what, bool duplicate = false) {
    findings_.Violation(fmt::format("{}: {}{}: {}", name_, what,
                                    in_snapshot ? " (in a snapshot)" : "", findings_.Describe(ev)));
    if (duplicate) findings_.AddDuplicated(1);
  };
  if (ev.type != 'D' && !filter_.Match(ev.obj)) violation("an object outside the filter");
  if (ev.obj.rv > ev.rv) violation("an object newer than its event");
  auto held = state.find(ev.key);
  auto seen = max_seen_.find(ev.obj.uid);
  switch (ev.type) {
    case 'A':
      if (held != state.end()) violation("ADDED of an object the client holds", true);
      if (seen != max_seen_.end() &&
          (in_snapshot ? ev.obj.rv < seen->second : ev.obj.rv <= seen->second)) {
        violation("ADDED of a version already seen, or older", true);
      }
      state[ev.key] = ev.obj;
      break;
    case 'M':
      if (held == state.end()) {
        violation("MODIFIED of an object the client does not hold");
      } else if (held->second.uid != ev.obj.uid) {
        violation("MODIFIED with another UID than the object held");
      } else if (ev.obj.rv <= held->second.rv) {
        violation("MODIFIED to a version already held, or older", true);
      }
      state[ev.key] = ev.obj;
      break;
    case 'D':
      if (held == state.end()) {
        violation("DELETED of an object the client does not hold", true);
        break;
      }
      if (held->second.uid != ev.obj.uid) violation("DELETED with another UID than the one held");
      if (ev.obj.rv < held->second.rv) violation("DELETED carrying an older state than held");
      state.erase(held);
      break;
    default:
      violation("an event of no known type");
  }
  uint64_t& max = max_seen_[ev.obj.uid];
  max = std::max(max, ev.obj.rv);
}

// ---- Replay -----------------------------------------------------------------------------

std::vector<Ev> Replay(const Epoch& reference, const Filter& filter,
                       const std::vector<uint64_t>& points,
                       const std::function<void(std::size_t, const State&)>& at_point) {
  State full = reference.initial;
  State filtered = Filtered(full, filter);
  std::vector<Ev> view;
  std::size_t next = 0;
  auto report_below = [&](uint64_t version) {
    while (next < points.size() && points[next] < version) at_point(next++, filtered);
  };
  for (const Ev& ev : reference.events) {
    report_below(ev.rv);
    auto old = full.find(ev.key);
    const bool old_match = old != full.end() && filter.Match(old->second);
    const Obj previous = old != full.end() ? old->second : Obj{};
    if (ev.type == 'D') {
      if (old != full.end()) full.erase(old);
      if (old_match) {
        view.push_back(ev);
        filtered.erase(ev.key);
      }
      continue;
    }
    full[ev.key] = ev.obj;
    if (filter.Match(ev.obj)) {
      Ev seen = ev;
      seen.type = old_match ? 'M' : 'A';
      view.push_back(seen);
      filtered[ev.key] = ev.obj;
    } else if (old_match) {
      Ev gone = ev;
      gone.type = 'D';
      gone.obj = previous;
      view.push_back(gone);
      filtered.erase(ev.key);
    }
  }
  report_below(UINT64_MAX);
  return view;
}

// ---- Checker ----------------------------------------------------------------------------

Checker::Checker(std::vector<Epoch> reference, std::set<uint64_t> list_versions,
                 std::set<uint32_t> written_namespaces, Findings& findings)
    : reference_(std::move(reference)),
      list_versions_(std::move(list_versions)),
      written_namespaces_(std::move(written_namespaces)),
      findings_(findings) {
  for (const Epoch& epoch : reference_) {
    for (std::size_t i = 1; i < epoch.events.size(); ++i) {
      if (epoch.events[i].rv == epoch.events[i - 1].rv) list_versions_.insert(epoch.events[i].rv);
    }
  }
}

bool Checker::Covers(std::size_t i, uint64_t v) const {
  const Epoch& r = reference_[i];
  if (v < r.start || v > r.end) return false;
  // The end of an epoch that broke off may be a relist's version only partly received.
  return v < r.end || i + 1 == reference_.size() || list_versions_.count(v) == 0;
}

std::optional<std::size_t> Checker::EpochCovering(uint64_t v) const {
  for (std::size_t i = 0; i < reference_.size(); ++i) {
    if (Covers(i, v)) return i;
  }
  return std::nullopt;
}

int Checker::CheckLists(const std::vector<ListRecord>& lists) {
  int checked = 0;
  for (std::size_t i = 0; i < reference_.size(); ++i) {
    std::map<uint32_t, std::vector<const ListRecord*>> by_namespace;
    for (const ListRecord& list : lists) {
      if (EpochCovering(list.rv) == i) by_namespace[list.filter.ns].push_back(&list);
    }
    for (auto& [ns, records] : by_namespace) {
      std::stable_sort(records.begin(), records.end(),
                       [](const ListRecord* a, const ListRecord* b) { return a->rv < b->rv; });
      std::vector<uint64_t> points;
      for (const ListRecord* record : records) points.push_back(record->rv);
      Filter filter;
      filter.ns = ns;
      Replay(reference_[i], filter, points, [&](std::size_t j, const State& state) {
        ++checked;
        if (records[j]->items == state) return;
        findings_.Violation(fmt::format(
            "List of {} at {} is not the state the reference subscriber had at that version: {}",
            ns == kAllNamespaces ? "all namespaces" : findings_.names().Name(ns), records[j]->rv,
            findings_.DescribeDifference(records[j]->items, state)));
      });
    }
  }
  return checked;
}

Checker::Compared Checker::CheckSubscriber(const std::string& name, const Filter& filter,
                                           const std::vector<Epoch>& epochs) {
  Compared compared;
  using Key = std::tuple<char, uint32_t, uint32_t, uint64_t, uint64_t>;
  for (const Epoch& c : epochs) {
    for (std::size_t i = 0; i < reference_.size(); ++i) {
      const Epoch& r = reference_[i];
      std::vector<uint64_t> points;
      if (Covers(i, c.start)) points.push_back(c.start);
      const uint64_t low = std::max(c.start, r.start);
      const uint64_t high = std::min(c.end, r.end);
      if (low >= high && points.empty()) continue;
      const std::vector<Ev> view = Replay(r, filter, points, [&](std::size_t, const State& state) {
        ++compared.snapshots;
        if (c.initial == state) return;
        findings_.Violation(
            fmt::format("{}: its snapshot at {} is not the reference's state there: {}", name,
                        c.start, findings_.DescribeDifference(c.initial, state)));
      });
      if (low >= high) continue;
      // Events at `high` only if that version cannot be a relist's only partly received.
      const bool inclusive = list_versions_.count(high) == 0;
      auto in_range = [&](const Ev& ev) {
        return ev.rv > low && (ev.rv < high || (inclusive && ev.rv == high));
      };
      std::vector<Ev> want, got;
      std::copy_if(view.begin(), view.end(), std::back_inserter(want), in_range);
      std::copy_if(c.events.begin(), c.events.end(), std::back_inserter(got), in_range);
      ++compared.epochs;
      if (want == got) continue;
      std::multiset<Key> w, g;
      for (const Ev& ev : want) w.emplace(ev.type, ev.key, ev.obj.uid, ev.rv, ev.obj.rv);
      for (const Ev& ev : got) g.emplace(ev.type, ev.key, ev.obj.uid, ev.rv, ev.obj.rv);
      std::vector<Key> missing, extra;
      std::set_difference(w.begin(), w.end(), g.begin(), g.end(), std::back_inserter(missing));
      std::set_difference(g.begin(), g.end(), w.begin(), w.end(), std::back_inserter(extra));
      findings_.AddLost(missing.size());
      findings_.AddDuplicated(extra.size());
      std::size_t first = 0;
      while (first < want.size() && first < got.size() && want[first] == got[first]) ++first;
      findings_.Violation(fmt::format(
          "{}: its events in ({}, {}] differ from the reference's: {} missing, {} extra{}; "
          "first difference at #{}: expected {}, got {}",
          name, low, high, missing.size(), extra.size(),
          missing.empty() && extra.empty() ? " (the order differs)" : "", first,
          first < want.size() ? findings_.Describe(want[first]) : "nothing",
          first < got.size() ? findings_.Describe(got[first]) : "nothing"));
    }
  }
  return compared;
}

uint64_t Checker::CheckAgainstWrites(const std::vector<Write>& writes) {
  uint64_t checked = 0;
  std::set<std::tuple<uint32_t, uint32_t, uint64_t>> upserts;  // key, UID, version
  std::set<uint32_t> deleted_uids;
  for (const Write& write : writes) {
    if (write.op == 'D') {
      deleted_uids.insert(write.obj.uid);
    } else {
      upserts.emplace(write.key, write.obj.uid, write.obj.rv);
    }
  }
  auto written = [&](const Obj& obj) { return written_namespaces_.count(obj.ns) != 0; };
  for (std::size_t i = 0; i < reference_.size(); ++i) {
    const Epoch& r = reference_[i];
    std::set<uint32_t> uids_seen;
    for (const auto& [key, obj] : r.initial) {
      if (!written(obj)) continue;
      uids_seen.insert(obj.uid);
      if (upserts.count({key, obj.uid, obj.rv}) == 0) {
        findings_.Violation(
            fmt::format("reference: its snapshot at {} holds {}, which no write made", r.start,
                        findings_.Describe(key, obj)));
        findings_.AddDuplicated(1);
      }
    }
    std::map<uint32_t, std::vector<const Ev*>> by_key;
    for (const Ev& ev : r.events) {
      if (!written(ev.obj)) continue;
      by_key[ev.key].push_back(&ev);
      uids_seen.insert(ev.obj.uid);
      if (ev.type == 'D') {
        if (deleted_uids.count(ev.obj.uid) == 0) {
          findings_.Violation(
              fmt::format("reference: {}, but no writer deleted it", findings_.Describe(ev)));
        }
      } else if (upserts.count({ev.key, ev.obj.uid, ev.obj.rv}) == 0) {
        findings_.Violation(
            fmt::format("reference: {}, which no write made", findings_.Describe(ev)));
        findings_.AddDuplicated(1);
      }
    }
    for (const Write& write : writes) {
      if (write.op == 'D' || !written(write.obj) || write.obj.rv <= r.start ||
          !Covers(i, write.obj.rv)) {
        continue;
      }
      ++checked;
      const std::vector<const Ev*>& events = by_key[write.key];
      auto next = std::find_if(events.begin(), events.end(),
                               [&](const Ev* ev) { return ev->rv >= write.obj.rv; });
      bool accounted = false;
      if (next != events.end()) {
        const Ev& ev = **next;
        accounted = (ev.type != 'D' && ev.obj.rv == write.obj.rv && ev.obj.uid == write.obj.uid) ||
                    list_versions_.count(ev.rv) != 0;
      } else {
        // Created and deleted while informerd could not watch, and relisted after: never seen.
        auto relist = list_versions_.lower_bound(write.obj.rv);
        accounted = uids_seen.count(write.obj.uid) == 0 && relist != list_versions_.end() &&
                    *relist <= r.end && deleted_uids.count(write.obj.uid) != 0;
      }
      if (!accounted) {
        findings_.AddLost(1);
        findings_.Violation(fmt::format(
            "reference: the write {} {} is not among its events{}", write.op,
            findings_.Describe(write.key, write.obj),
            next != events.end() ? fmt::format(" (the next one: {})", findings_.Describe(**next))
                                 : ""));
      }
    }
  }
  return checked;
}

}  // namespace informerd::test::chaos
