#!/usr/bin/python3
"""A client in another language: Python (Debian's python3-grpcio) health-checks a running informerd.

Stubs are generated at test time from Debian's grpc-proto with /usr/bin/protoc and
grpc_python_plugin, exactly as a user of any language would generate theirs.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

import grpc

BINARY = "cmd/informerd/informerd"
FAKE_APISERVER = "test/fakeapi/fakeapi_server"


def start_fake_apiserver(work_dir):
    """Starts the project's fake apiserver with a few pods; returns it and a kubeconfig for it."""
    fake = subprocess.Popen([FAKE_APISERVER, "--objects", "5", "--object-bytes", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(fake.stdout.readline())
    kubeconfig = os.path.join(work_dir, "kubeconfig")
    with open(kubeconfig, "w") as out:
        out.write("apiVersion: v1\nkind: Config\n"
                  "clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:%d\n"
                  "users:\n- name: tester\n  user:\n    token: t\n"
                  "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
                  "current-context: fake\n" % port)
    return fake, kubeconfig


def generate_health_stubs(out_dir):
    # Mapped to a top-level "healthstubs" package: the name "grpc" belongs to grpcio itself.
    subprocess.run(
        ["/usr/bin/protoc", "-Ihealthstubs=/usr/share/grpc-proto/grpc/health",
         "--python_out=" + out_dir, "--grpc_out=" + out_dir,
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", "healthstubs/v1/health.proto"],
        check=True)
    sys.path.insert(0, out_dir)


def start_daemon(kubeconfig, config):
    """Starts informerd; returns it, its address and the list its stderr lines are read into."""
    daemon = subprocess.Popen([BINARY, "--config", config, "--kubeconfig", kubeconfig,
                               "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                               "--probe-listen", "127.0.0.1:0"],
                              stderr=subprocess.PIPE, text=True)
    lines = []
    found = threading.Event()
    address = []

    def drain():  # keeps reading to the end, so the daemon never blocks on a full pipe
        for line in daemon.stderr:
            lines.append(line)
            match = re.search(r"gRPC listening on (\S+)", line)
            if match and not found.is_set():
                address.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(timeout=20) or not address:
        daemon.kill()
        raise AssertionError("informerd did not report its address; stderr:\n" + "".join(lines))
    return daemon, address[0], lines


def main():
    with tempfile.TemporaryDirectory() as stubs:
        generate_health_stubs(stubs)
        from healthstubs.v1 import health_pb2, health_pb2_grpc

        fake, kubeconfig = start_fake_apiserver(stubs)
        # Only resources the fake apiserver serves, so that the daemon becomes ready.
        config = os.path.join(stubs, "pods.yaml")
        with open(config, "w") as out:
            out.write("resources:\n  - resource: pods\n")
        daemon, address, stderr_lines = start_daemon(kubeconfig, config)
        try:
            with grpc.insecure_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                # Health is readiness: SERVING once every configured resource has synced. Watch
                # streams the changes, as a load balancer or Kubernetes' gRPC probe would see them.
                seen = []
                for reply in stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=20):
                    seen.append(reply.status)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                assert seen[-1] == health_pb2.HealthCheckResponse.SERVING, (seen, stderr_lines)
                print("health of '' is", health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
                try:
                    stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
                    raise AssertionError("an unknown service must be NOT_FOUND")
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.NOT_FOUND, error
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=15)
            fake.terminate()
            fake.wait(timeout=15)
        assert code == 0, "informerd exited %d after SIGTERM; stderr:\n%s" % (
            code, "".join(stderr_lines))
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
