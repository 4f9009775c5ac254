#!/usr/bin/python3
"""informerd's container image, built for real with podman (deploy/build_image.sh --prebuilt: the
Dockerfile's runtime stage around the binaries Bazel built) and run against a real kube-apiserver
(test/cluster/cluster.sh): the image runs as uid/gid 65532; `ldd` inside it finds every library of
both binaries (dockerfile_test.py's check, run in the container), the same sonames as on the
build machine; informerd serves from a read-only root filesystem (no writable /tmp either) with
--network host and --kubeconfig: /readyz 200 once synced, gRPC health SERVING, informerctl (from
bazel-bin and the image's own) lists the pod the test created; SIGTERM (`podman stop`) ends it
with status 0.

Skips (exit 0, "SKIP: ..." and "0 passed, 0 failed, 1 skipped") when this machine cannot build an
image: no podman or runc, or no base image and no way to make one (build_image.sh exits 3). Any
other build failure fails."""
import json
import os
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_testlib as lib  # noqa: E402
import dockerfile_test  # noqa: E402

BUILD_IMAGE = "deploy/build_image.sh"
INFORMERD = "cmd/informerd/informerd"
INFORMERCTL = "cmd/informerctl/informerctl"
TAG = "localhost/informerd:image-test"
UID = 65532
PODMAN = os.environ.get("PODMAN", "podman")


def skip(reason):
    print("SKIP: " + reason)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


def podman(*args, check=True, timeout=120):
    result = subprocess.run([PODMAN] + list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError("podman %s failed (%d):\n%s%s" % (" ".join(args), result.returncode,
                                                               result.stdout, result.stderr))
    return result


def run_prefix():
    """`podman run` as this host needs it: runc (crun fails in cgroup hybrid mode), never pull,
    and rlimits the container may set. Every caller names a network (host or none): podman's
    default bridge would change the host's ip_forward and iptables. podman's defaults (nofile and nproc of about a million)
    exceed what a process here may set ("error setting rlimit ...: operation not permitted"):
    nofile is capped at this process's hard limit, nproc at 32768 (the most runc could set on
    the machine this was written on, whose hard limit was 96370)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    return ["--runtime", "runc", "run", "--rm", "--pull=never",
            "--ulimit", "nofile=%d:%d" % (nofile, nofile), "--ulimit", "nproc=%d:%d" % (nproc, nproc)]


def build():
    check = subprocess.run([BUILD_IMAGE, "--check"], capture_output=True, text=True)
    if check.returncode == 3:
        skip(check.stderr.strip())
    lib.check(check.returncode == 0, "build_image.sh --check failed (%d): %s" % (
        check.returncode, check.stderr))
    started = time.monotonic()
    result = subprocess.run([BUILD_IMAGE, "--prebuilt", INFORMERD, INFORMERCTL, "--tag", TAG],
                            capture_output=True, text=True, timeout=1200)
    if result.returncode == 3:
        skip(result.stderr.strip().splitlines()[-1])
    lib.check(result.returncode == 0, "build_image.sh --prebuilt failed (%d):\n%s" % (
        result.returncode, result.stderr[-6000:]))
    print("image built in %.1fs: %s" % (time.monotonic() - started,
                                        result.stderr.strip().splitlines()[-1]))
    return result.stdout.strip()


def check_user():
    user = podman("image", "inspect", "--format", "{{.Config.User}}", TAG).stdout.strip()
    lib.check(user in ("%d" % UID, "%d:%d" % (UID, UID)), "image user is %r, not %d" % (user, UID))
    ids = subprocess.run([PODMAN] + run_prefix() + ["--network", "none", "--entrypoint", "id",
                                                     TAG], capture_output=True, text=True,
                         timeout=120)
    lib.check(ids.returncode == 0 and ids.stdout.startswith("uid=%d(informerd) gid=%d(informerd)"
                                                            % (UID, UID)),
              "`id` in the image: %s%s" % (ids.stdout, ids.stderr))
    print("ok   runs as %s" % ids.stdout.strip())


def check_libraries():
    """Every library of both binaries found inside the image, the same sonames as here."""
    for name, host_binary in (("informerd", INFORMERD), ("informerctl", INFORMERCTL)):
        inside = dockerfile_test.ldd_libraries("/usr/local/bin/" + name, ldd=[PODMAN] + run_prefix() + [
            "--network", "none", "--entrypoint", "ldd", TAG])
        here = dockerfile_test.ldd_libraries(host_binary)
        inside_names = sorted(n for n, _ in inside)
        here_names = sorted(n for n, _ in here)
        lib.check(inside_names == here_names, "%s loads other libraries in the image:\n%s\nthan "
                  "here:\n%s" % (name, inside_names, here_names))
        print("ok   ldd in the image: %s finds all %d libraries" % (name, len(inside)))


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def check_serving(cluster, work):
    cluster.kubectl("run", "image-test-pod", "--image=registry.example.com/app:1",
                    "--restart=Never", "-n", "default")
    # The kubeconfig the container reads: alice (reads the example config's resources), with the
    # test CA beside it, owned by the image's user (as a mounted Secret would be readable).
    secrets = os.path.join(work, "kube")
    os.makedirs(secrets)
    ca = os.path.join(secrets, "ca.crt")
    with open(cluster.env["CA_FILE"], "rb") as src, open(ca, "wb") as dst:
        dst.write(src.read())
    kubeconfig = os.path.join(secrets, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write("apiVersion: v1\nkind: Config\n"
                "clusters:\n- name: test\n  cluster:\n    server: %s\n"
                "    certificate-authority: /var/run/kube/ca.crt\n"
                "users:\n- name: alice\n  user:\n    token: %s\n"
                "contexts:\n- name: alice\n  context:\n    cluster: test\n    user: alice\n"
                "current-context: alice\n" % (cluster.env["APISERVER_URL"],
                                              cluster.env["TOKEN_ALICE_TOKEN"]))
    for path in (secrets, ca, kubeconfig):
        os.chown(path, UID, UID)
    os.chmod(kubeconfig, 0o600)
    os.chmod(ca, 0o600)
    grpc_port, metrics_port = lib.free_port(), lib.free_port()
    while metrics_port == grpc_port:
        metrics_port = lib.free_port()
    name = "informerd-image-test-%d" % os.getpid()
    # Read-only root and no tmpfs at all (podman adds /tmp, /run and /var/tmp by default): only
    # the kubeconfig mount.
    args = [PODMAN] + run_prefix() + [
        "--name", name, "--network", "host", "--read-only", "--read-only-tmpfs=false",
        "-v", "%s:/var/run/kube:ro" % secrets, TAG,
        "--config=/etc/informerd/informerd.yaml", "--listen=127.0.0.1:%d" % grpc_port,
        "--metrics-listen=127.0.0.1:%d" % metrics_port, "--kubeconfig=/var/run/kube/kubeconfig"]
    daemon = lib.Daemon(args[0], args[1:])
    try:
        readyz = "http://127.0.0.1:%d/readyz" % metrics_port
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and http_status(readyz) != 200:
            lib.check(daemon.process.poll() is None,
                      "the container exited (%s):\n%s" % (daemon.process.poll(), daemon.log()))
            time.sleep(0.2)
        lib.check(http_status(readyz) == 200, "/readyz never 200 within 120s; log:\n" + daemon.log())
        inspect = json.loads(podman("inspect", name).stdout)[0]
        lib.check(inspect["HostConfig"]["ReadonlyRootfs"] is True, "root filesystem not read-only")
        mounts = [m["Destination"] for m in inspect["Mounts"]]
        lib.check(mounts == ["/var/run/kube"], "unexpected mounts %s" % mounts)
        print("ok   /readyz 200 with a read-only root filesystem (mounts: %s)" % mounts)

        stub, health_pb2 = lib.health_stub("127.0.0.1:%d" % grpc_port, work)
        # gRPC health follows readiness on a 500 ms timer (/readyz at once): allow for the lag.
        deadline = time.monotonic() + 10
        while True:
            status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
            if status == health_pb2.HealthCheckResponse.SERVING or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        lib.check(status == health_pb2.HealthCheckResponse.SERVING,
                  "gRPC health %s 10 s after /readyz was 200" % status)
        print("ok   gRPC health SERVING")

        address = "127.0.0.1:%d" % grpc_port
        outside = subprocess.run([INFORMERCTL, "--address", address, "-o", "name", "list", "pods",
                                  "-n", "default"], capture_output=True, text=True, timeout=30)
        lib.check(outside.returncode == 0 and "image-test-pod" in outside.stdout,
                  "informerctl list pods: %s%s" % (outside.stdout, outside.stderr))
        inside = subprocess.run([PODMAN] + run_prefix() + [
            "--network", "host", "--read-only", "--entrypoint", "/usr/local/bin/informerctl",
            TAG, "--address", address, "-o", "name", "list", "pods", "-n", "default"],
            capture_output=True, text=True, timeout=60)
        lib.check(inside.returncode == 0 and inside.stdout == outside.stdout,
                  "the image's informerctl: %s%s (bazel-bin's: %s)" % (
                      inside.stdout, inside.stderr, outside.stdout))
        print("ok   informerctl (bazel-bin's and the image's) lists %s" % outside.stdout.strip())

        stopped = podman("stop", "--time", "20", name, timeout=60)
        lib.check(stopped.returncode == 0, "podman stop: %s" % stopped.stderr)
        status = daemon.process.wait(timeout=30)
        lib.check(status == 0, "informerd exited %d after SIGTERM; log:\n%s" % (status, daemon.log()))
        print("ok   SIGTERM: informerd exits 0")
    finally:
        podman("rm", "-f", "--time", "5", name, check=False)
        if daemon.process.poll() is None:
            daemon.process.kill()


def main():
    for path in (INFORMERD, INFORMERCTL):
        lib.check(os.access(path, os.X_OK), "%s not built" % path)
    build()
    check_user()
    check_libraries()
    cluster = lib.Cluster()
    try:
        check_serving(cluster, lib.work_dir())
    finally:
        cluster.stop()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
