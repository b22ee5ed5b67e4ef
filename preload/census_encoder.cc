#include "preload/census_encoder.h"

#include <unistd.h>

#include <cstring>

#include "preload/module_map.h"
#include "preload/record_writer.h"
#include "preload/site_counters.h"
#include "preload/stack_table.h"

namespace dw {
namespace {

uint64_t HashBytes(uint64_t hash, const char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

}  // namespace

bool CensusEncoder::Init(const CensusSources& sources, uint32_t interval_ms, uint16_t depth) {
  sources_ = sources;
  interval_ms_ = interval_ms;
  depth_ = depth;
  max_sites_ = sources.stacks->max_sites();
  image_nonce_ = os::RandomU64();
  connections_made_ = 0;
  if (!defined_.Init((max_sites_ + 63) / 64)) return false;
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    if (sources_.kinds[kind].counters == nullptr) continue;
    if (!last_sent_[kind].Init(sources_.kinds[kind].counters->max_sites())) return false;
  }
  return true;
}

void CensusEncoder::NewConnection() {
  sequence_ = 0;
  first_undefined_ = 1;
  scanned_up_to_ = 1;
  read_every_site_ = true;
  modules_hash_ = 0;
  // Dropping the pages (rather than zeroing them) gives zeroes back without making every page
  // of the arrays resident.
  defined_.DiscardAll();
  for (auto& last_sent : last_sent_) last_sent.DiscardAll();
}

void CensusEncoder::ForgetAfterFork() {
  image_nonce_ = os::RandomU64();
  connections_made_ = 0;
  maps_.Forget();
  build_ids_.Forget();
  generation_at_last_census_ = 0;
  generation_before_last_census_ = 0;
  // The per-connection memory is cleared when the child connects (NewConnection): most children
  // exec or exit first, and fork must stay cheap.
}

bool CensusEncoder::AppendHello(os::PageBuffer& out) {
  os::ProcessStat stat;
  os::ReadProcessStat(stat);
  char exe[4096];
  ssize_t exe_length = os::ReadLink("/proc/self/exe", exe, sizeof(exe));
  if (exe_length < 0) exe_length = 0;
  wire::Hello hello{};
  hello.magic = wire::kHelloMagic;
  hello.protocol_version = wire::kProtocolVersion;
  hello.pid = static_cast<uint32_t>(os::GetPid());
  hello.ppid = static_cast<uint32_t>(stat.ppid);
  hello.start_time_ticks = stat.start_time_ticks;
  hello.clock_ticks_per_second = static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  hello.realtime_ns_at_hello = os::RealtimeNs();
  hello.interval_ms = interval_ms_;
  hello.depth = depth_;
  hello.mode = sources_.heap_sample_mean_bytes != 0 ? wire::kModeSampled : wire::kModeExact;
  hello.sample_mean_bytes = sources_.heap_sample_mean_bytes;
  hello.exe_length = static_cast<uint32_t>(exe_length);
  RecordWriter writer(out);
  writer.Begin(wire::RecordType::kHello);
  writer.Append(&hello, sizeof(hello));
  writer.Append(exe, hello.exe_length);
  if (!writer.End()) return false;
  wire::Image image{};
  image.nonce = image_nonce_;
  image.connection_index = connections_made_++;
  return writer.Add(wire::RecordType::kImage, &image, sizeof(image));
}

bool CensusEncoder::AppendCensus(os::PageBuffer& out, bool final, uint64_t censuses_dropped) {
  // Reconcile first (e.g. fds opened where no hook could see them), so the counters read below
  // include what reconciliation found.
  for (const CensusSources::Reconcile reconcile : sources_.reconcilers) {
    if (reconcile != nullptr) reconcile();
  }
  const size_t rollback = out.size();
  RecordWriter writer(out);
  os::ProcessStat stat;
  os::ReadProcessStat(stat);
  wire::CensusBegin begin{};
  begin.sequence = sequence_;
  begin.realtime_ns = os::RealtimeNs();
  begin.monotonic_ns = os::MonotonicNs();
  begin.rss_bytes = os::ReadRssBytes();
  begin.fd_count = os::CountOpenFds();
  begin.thread_count = stat.threads;
  begin.censuses_dropped = censuses_dropped;
  begin.sites_overflowed = sources_.stacks->overflowed();
  for (const KindSource& kind : sources_.kinds) {
    if (kind.table_overflowed != nullptr) begin.table_overflowed += kind.table_overflowed();
    if (kind.untracked_releases != nullptr) begin.untracked_releases += kind.untracked_releases();
  }
  // Only stacks interned before the maps are read are defined in this census: their modules
  // were mapped when they were captured, so they are in the module list (or among the unloaded
  // ones). A stack interned meanwhile, perhaps in a library dlopen'd meanwhile, waits for the
  // next census and its module list.
  const uint32_t definable = sources_.stacks->end_id();
  bool ok = writer.Add(wire::RecordType::kCensusBegin, &begin, sizeof(begin));
  if (ok) ok = AppendModules(out, final);
  if (ok) ok = AppendSiteDefinitions(out, definable);
  if (ok) ok = AppendCounters(out);
  for (const CensusSources::WriteRecords write : sources_.record_writers) {
    if (ok && write != nullptr) ok = write(writer);
  }
  wire::CensusEnd end{sequence_, final ? wire::kCensusFinal : 0u, 0};
  if (ok) ok = writer.Add(wire::RecordType::kCensusEnd, &end, sizeof(end));
  if (!ok) {
    // Out of memory for the buffer: send nothing rather than half a census. Definitions and
    // counters written into the dropped bytes are sent again on the next connection only, so
    // the caller resets the connection to keep the collector's view whole.
    out.set_size(rollback);
    return false;
  }
  ++sequence_;
  return true;
}

bool CensusEncoder::AppendModules(os::PageBuffer& out, bool final) {
  if (!os::ReadFile("/proc/self/maps", maps_)) return true;  // nothing to say this time
  const char* const end = maps_.data() + maps_.size();
  UnloadedModules* unloaded = sources_.unloaded_modules;
  const uint64_t generation_before = unloaded != nullptr ? unloaded->generation() : 0;
  // Two passes over the same text: hash and count, then (only if it changed) encode.
  uint64_t hash = 0xCBF29CE484222325ull;
  if (unloaded != nullptr && !final) {
    // Unloads recorded before the previous census can no longer concern a stack not yet
    // defined; one census of margin covers stacks captured while that census was being built.
    const uint64_t generation = unloaded->generation();
    unloaded->Prune(generation_before_last_census_);
    generation_before_last_census_ = generation_at_last_census_;
    generation_at_last_census_ = generation;
    const uint64_t version = unloaded->version();
    hash = HashBytes(hash, reinterpret_cast<const char*>(&version), sizeof(version));
  }
  uint32_t count = 0;
  MapsLine line;
  for (CodeMappingWalker walker(maps_.data(), end); walker.Next(line);) {
    hash = HashBytes(hash, line.text, line.text_length);
    ++count;
  }
  if (hash == modules_hash_) return true;

  RecordWriter writer(out);
  writer.Begin(wire::RecordType::kModuleList);
  // The count is known only at the end (dlclose may record more meanwhile): patched in then.
  const size_t header_at = out.size();
  wire::ModuleListHeader header{0, 0};
  if (unloaded != nullptr) {
    header.unload_history = static_cast<uint32_t>(unloaded->history_start() & 0xffffu) |
                            static_cast<uint32_t>((generation_before & 0xffffu) << 16);
  }
  writer.Append(&header, sizeof(header));
  build_ids_.Clear();
  uint32_t index = 0;
  uint32_t build_id_count = 0;
  bool build_ids_ok = true;
  auto add = [&](const MapsLine& line, const BuildId& build_id) {
    writer.Append(&line.entry, sizeof(line.entry));
    writer.Append(line.path, line.entry.path_length);
    if (build_id.length > 0) {
      wire::BuildIdEntry entry{index, build_id.length};
      // All or nothing: a BuildIds record whose count disagrees with its entries would be
      // rejected, so a failed append (no memory) drops the record, not the census.
      build_ids_ok = build_ids_ok && build_ids_.Append(&entry, sizeof(entry)) &&
                     build_ids_.Append(build_id.bytes, build_id.length);
      ++build_id_count;
    }
    ++index;
  };
  const os::OwnMemory memory;
  for (CodeMappingWalker walker(maps_.data(), end); index < count && walker.Next(line);) {
    BuildId build_id;
    if (IsCodeImage(line, walker.rest(), end)) {
      ReadBuildId(memory, line.entry.start, line.entry.end, build_id);
    }
    add(line, build_id);
  }
  // A dlclose (and perhaps a dlopen into the same addresses) since the maps were read: the
  // build-ids may belong to other images than the lines say. Sent without them, and again
  // with them next census.
  bool complete = unloaded == nullptr || unloaded->generation() == generation_before;
  if (!complete) build_ids_ok = false;
  if (unloaded != nullptr && !unloaded->ForEach(add, /*try_only=*/final)) complete = false;
  if (!writer.End()) return false;
  header.count = index;
  memcpy(out.data() + header_at, &header, sizeof(header));

  if (build_id_count > 0 && build_ids_ok) {
    writer.Begin(wire::RecordType::kBuildIds);
    wire::BuildIdsHeader ids_header{build_id_count, 0};
    writer.Append(&ids_header, sizeof(ids_header));
    writer.Append(build_ids_.data(), build_ids_.size());
    if (!writer.End()) return false;
  }
  modules_hash_ = complete ? hash : 0;
  return true;
}

bool CensusEncoder::AppendSiteDefinitions(os::PageBuffer& out, uint32_t end) {
  const StackTable& stacks = *sources_.stacks;
  RecordWriter writer(out);
  uint32_t first_pending = end;
  for (uint32_t id = first_undefined_; id < end; ++id) {
    if (Defined(id)) continue;
    // An id handed out but not yet written belongs to an insert in progress, or to a thread
    // that will never finish it (it was mid-insert when the process forked): it stays pending,
    // and neither it nor its counters are sent until it is written.
    if (!stacks.Published(id)) {
      if (first_pending == end) first_pending = id;
      continue;
    }
    if (!stacks.IsDuplicate(id)) {
      uint32_t depth = stacks.Depth(id);
      wire::SiteDef def{id, static_cast<uint16_t>(depth), stacks.ModuleGeneration(id)};
      writer.Begin(wire::RecordType::kSiteDef);
      writer.Append(&def, sizeof(def));
      writer.Append(stacks.Frames(id), depth * sizeof(uint64_t));
      if (!writer.End()) return false;
    }
    if (!MarkDefined(id)) return false;  // no memory: the census is dropped whole
  }
  first_undefined_ = first_pending;
  if (end > scanned_up_to_) scanned_up_to_ = end;
  return true;
}

bool CensusEncoder::AppendCounters(os::PageBuffer& out) {
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    if (sources_.kinds[kind].counters != nullptr && !AppendKindCounters(out, kind)) return false;
  }
  read_every_site_ = false;
  return true;
}

bool CensusEncoder::AppendKindCounters(os::PageBuffer& out, uint32_t kind) {
  // A kind's counters may span several records: one record of every site of a large table
  // would pass the collector's record limit (wire::kMaxRecordLength).
  constexpr uint32_t kMaxEntriesPerRecord = 1u << 16;
  const KindSource& source = sources_.kinds[kind];
  LazyArray<LastSent, 12>& last_sent = last_sent_[kind];
  RecordWriter writer(out);
  wire::CountersHeader header{kind, 0};
  auto close_record = [&]() {
    if (header.count == 0) {
      writer.Abandon();  // nothing changed
      return true;
    }
    memcpy(out.data() + out.size() - writer.payload_size(), &header, sizeof(header));
    return writer.End();
  };
  // Appends the site's counters if they changed since last sent. False: no buffer memory.
  auto append_site = [&](uint32_t site) {
    // Site 0 (unattributed) is always eligible; defined sites only once their definition went
    // out, so a collector never sees counters for a stack it cannot resolve. The change of a
    // site not yet defined is kept for the census that defines it.
    if (site != StackTable::kNoSite && !Defined(site)) {
      source.counters->MarkChanged(site);
      return true;
    }
    SiteCounters::Snapshot now = source.counters->Read(site);
    const LastSent* before = last_sent.Get(site);
    if (before == nullptr ? now.acquired == 0 && now.released == 0
                          : now.acquired == before->acquired && now.released == before->released) {
      return true;
    }
    LastSent* last = last_sent.Ensure(site);
    if (last == nullptr) {  // no memory to remember it: sent when there is
      source.counters->MarkChanged(site);
      return true;
    }
    wire::SiteCounter entry{site,
                            source.site_detail ? source.site_detail(site) : 0u,
                            now.acquired,
                            now.released,
                            now.acquired_bytes,
                            now.released_bytes};
    writer.Append(&entry, sizeof(entry));
    // If the census is dropped after all, the connection is reset, and with it this memory.
    *last = LastSent{now.acquired, now.released};
    if (++header.count == kMaxEntriesPerRecord) {
      if (!close_record()) return false;
      header.count = 0;
      writer.Begin(wire::RecordType::kCounters);
      writer.Append(&header, sizeof(header));
    }
    return true;
  };
  writer.Begin(wire::RecordType::kCounters);
  writer.Append(&header, sizeof(header));
  bool ok = true;
  if (read_every_site_) {
    // A new connection has been sent nothing: every site is read once, marked or not.
    source.counters->ClearChanged();
    for (uint32_t site = 0; ok && site < scanned_up_to_; ++site) ok = append_site(site);
  } else {
    // Only the sites whose counters changed since the last census: what exists but is quiet
    // costs nothing. (A failure drops the census and resets the connection: the next one reads
    // every site again, so the marks taken here are not needed.)
    source.counters->TakeChanged(sources_.stacks->end_id(), [&](uint32_t site) {
      if (ok) ok = append_site(site);
    });
  }
  return ok && close_record();
}

}  // namespace dw
