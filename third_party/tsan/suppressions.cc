// ThreadSanitizer suppressions, compiled into every binary built with --config=tsan (this file is
// empty otherwise). Built in rather than passed as a file because Bazel 4.2.3 cannot give tests
// an absolute path to one, and informerd runs as a child of end-to-end tests.
//
// Debian's gRPC is not instrumented, so TSan cannot see its synchronization. Most of that is
// handled by TSAN_OPTIONS=ignore_noninstrumented_modules=1 (.bazelrc); what remains is gRPC's
// inline header code compiled into our binaries, synchronized inside libgrpc++. Each entry names
// a gRPC-internal frame that never appears on a stack of informerd's own code. Never suppress a
// frame of informerd's code here: fix the race.
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_suppressions() {
  return
      // Per-call interceptor state, built on one gRPC thread and handed to another by libgrpc++.
      "race:grpc::internal::InterceptorBatchMethodsImpl::InterceptorBatchMethodsImpl\n"
      // The callback API's inline halves: an operation set is filled (and a reactor or response
      // written) on the thread that starts it, and completed, run or destroyed on a gRPC thread
      // after libgrpc's completion queue hands it over. `race_top` matches only the innermost
      // frame of an access, so these hide nothing whose racing access is in informerd's own
      // code on both sides. Seen with the Informer service's Subscribe/List reactors.
      "race_top:grpc::internal::CallOpSet\n"
      "race_top:grpc::internal::CallbackWithSuccessTag\n"
      "race_top:grpc::internal::CallbackUnaryHandler\n"
      "race_top:grpc::internal::CallbackServerStreamingHandler\n"
      "race_top:grpc::internal::InterceptorBatchMethodsImpl\n"
      "race_top:grpc::internal::CallOpSendMessage\n"
      "race_top:grpc::GenericSerialize\n"
      // A reactor finished before gRPC has bound it to its call (Subscribe refused at once)
      // keeps the Finish in the reactor base's backlog, under the base's own mutex (absl's, not
      // instrumented); OnDone, and the base's destructor inlined into it, run on another gRPC
      // thread after the hand-over.
      "race_top:grpc::ServerWriteReactor\n"
      // gRPC binds a reactor to its call (writing the reactor's base) on the handler's thread;
      // OnDone runs on another after libgrpc's hand-over. Only gRPC calls these binders.
      "race:grpc::ServerUnaryReactor::InternalBindCall\n"
      "race:InternalBindWriter\n"
      // The reactor a unary handler gets from DefaultReactor(): made on the handler's thread,
      // destroyed in OnDone on another after libgrpc's hand-over.
      "race_top:grpc::internal::FinishOnlyReactor\n"
      // A unary call's request and response live in a holder gRPC allocates; the handler fills
      // the response on its thread, and the holder is released in OnDone on another.
      "race:grpc::internal::DefaultMessageHolder\n";
}
#endif
