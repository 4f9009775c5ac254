// LeakSanitizer suppressions, compiled into every test binary built with --config=asan (this file
// is empty otherwise), built in for the same reason as third_party/tsan/suppressions.cc.
//
// OpenSSL keeps state per thread (the error queue, the public and private random generators) and
// a primary random generator per process, allocated on first use and freed when the thread ends
// or at OpenSSL's own exit handler. gRPC's TLS threads are still running when a test process
// exits, so LeakSanitizer, which does not scan pthread-specific storage, reports that state as
// leaked (seen in test/e2e:access_cluster_test and grpc_transport_test, whose gRPC clients and
// servers complete TLS handshakes and fail one on purpose). Each entry names an OpenSSL function
// that allocates such state and nothing else (informerd's code calls ERR_clear_error too, which
// allocates only the calling thread's queue): a leak of an object informerd allocates through
// OpenSSL (X509, EVP_PKEY, BIO) has none of them on its stack and is still reported.
//
// The names are matched against the allocation's stack, which ASan's default fast unwinder cuts
// short at the first frame in a library built without frame pointers (libcrypto): test binaries
// unwind allocations the slow, exact way instead (about 3x slower on allocation-heavy tests).
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __asan_default_options() { return "fast_unwind_on_malloc=0"; }

extern "C" const char* __lsan_default_suppressions() {
  return
      // The random generators: per thread (public, private) and the process's primary.
      "leak:^RAND_get0_\n"
      // The per-thread error queue, created by whichever ERR_ function touches it first
      // (ERR_clear_error, ERR_set_mark, ERR_add_error_vdata seen), and the text it holds.
      "leak:^ERR_\n";
}
#endif
