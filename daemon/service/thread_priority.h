// Lowers the CPU priority of the threads that serve clients, so that when the cores are busy the
// threads that apply the watches (ingest) get them first. Linux gives each thread its own nice
// value: a thread at nice 10 receives about a tenth of the CPU time of a nice-0 thread competing
// for the same core, and all the time that no nice-0 thread wants. Raising one's own niceness
// needs no privilege (lowering it does), so this works for a non-root daemon in a container.
//
// Used by GrpcServer's call interceptor (on gRPC's threads, as each handles calls) and by the
// service's RpcExecutor (on its threads). Ingest threads, the HTTP ports' threads (the kubelet's
// probes) and the main thread are never lowered.
#pragma once

namespace informerd::daemon {

// Makes the calling thread's nice value at least `nice` (1 to 19; 0 or less does nothing); never
// lowers it. Cheap after the first call on a thread (a thread-local check). Failures (a sandbox
// refusing setpriority) are ignored: the thread keeps its priority.
void LowerThisThreadsPriority(int nice);

// The calling thread's nice value (for tests and logs).
int ThisThreadsNice();

}  // namespace informerd::daemon
