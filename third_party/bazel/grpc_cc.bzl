"""grpc_cc_library: protoc + grpc_cpp_plugin from Debian, run through a genrule, wrapped in a cc_library.

Bazel 4.2.3's proto rules would download protobuf's sources; Debian's /usr/bin/protoc and
/usr/bin/grpc_cpp_plugin generate the same code offline and match the installed libraries.
"""

def grpc_cc_library(name, protos, import_root, deps = [], visibility = None):
    """C++ messages and gRPC stubs for `protos`.

    Args:
      name: the cc_library.
      protos: proto paths relative to `import_root`, e.g. ["informerd/v1/informerd.proto"].
      import_root: the -I directory: a directory relative to this package ("." for the package itself) or an
        absolute system path such as /usr/share/grpc-proto.
      deps: further cc deps.
      visibility: of the cc_library.
    """
    outs_h = []
    outs_cc = []
    for p in protos:
        base = p[:-len(".proto")]
        outs_h += [base + ".pb.h", base + ".grpc.pb.h"]
        outs_cc += [base + ".pb.cc", base + ".grpc.pb.cc"]
    if import_root.startswith("/"):
        include = import_root
        srcs = []
        files = " ".join(protos)
    else:
        # protoc wants -I to be an exact textual prefix of each proto path.
        include = native.package_name() or "."
        if import_root != ".":
            include += "/" + import_root
        srcs = protos
        files = " ".join(["$(location %s)" % p for p in protos])
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = outs_h + outs_cc,
        cmd = ("/usr/bin/protoc -I%s --cpp_out=$(RULEDIR) --grpc_out=$(RULEDIR) " +
               "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin %s") % (include, files),
    )
    native.cc_library(
        name = name,
        srcs = outs_cc,
        hdrs = outs_h,
        includes = ["."],
        deps = deps + ["@system//:grpc"],
        visibility = visibility,
    )
