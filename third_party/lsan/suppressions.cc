// LeakSanitizer suppressions, compiled into every test binary built with --config=asan (this file
// is empty otherwise), built in for the same reason as third_party/tsan/suppressions.cc.
//
// OpenSSL keeps state per thread (the error queue, the public and private random generators) and
// a primary random generator per process, allocated on first use and freed when the thread ends
// or at OpenSSL's own exit handler. gRPC's TLS threads are still running when a test process
// exits, so LeakSanitizer, which does not scan pthread-specific storage, reports that state as
// leaked (seen in test/e2e:access_cluster_test, whose gRPC clients complete TLS handshakes and
// fail one on purpose). Each entry names an OpenSSL function that allocates such state and
// nothing else (informerd's code calls ERR_clear_error too, which allocates only the calling
// thread's queue): a leak of an object informerd allocates through OpenSSL (X509, EVP_PKEY, BIO)
// has none of them on its stack and is still reported.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __lsan_default_suppressions() {
  return
      // The random generators: per thread (public, private) and the process's primary.
      "leak:RAND_get0_primary\n"
      "leak:RAND_get0_private\n"
      "leak:RAND_get0_public\n"
      // The per-thread error queue, created by the first call that touches it.
      "leak:ERR_clear_error\n"
      "leak:ERR_set_mark\n"
      "leak:ERR_add_error_data\n"
      "leak:ERR_add_error_vdata\n";
}
#endif
