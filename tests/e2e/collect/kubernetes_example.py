#!/usr/bin/env python3
"""The Kubernetes examples (examples/kubernetes) work as written, as far as one machine can tell.

For each document: the service container's env list is exactly what `driftwatch env --format
kubernetes` prints for its shim path and socket; the shim's folder is mounted from the volume the
init container copies it into; the socket's folder is mounted from one volume in the service and
in the collector; the collector sees the service's processes (shareProcessNamespace or hostPID)
and may read their files (SYS_PTRACE); and the collector's arguments are accepted by the real
`driftwatch collect`, which is started with them (socket, state and metrics moved to a temporary
folder and a free loopback port) and stopped with SIGTERM. The README shows sidecar.yaml as it is.

Usage: kubernetes_example.py DRIFTWATCH EXAMPLES_DIR README
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def volume_source(pod_spec, name):
    """What a volume of the pod is: ('emptyDir', pod-local name) or ('hostPath', path)."""
    for volume in pod_spec.get("volumes", []):
        if volume["name"] == name:
            if "hostPath" in volume:
                return ("hostPath", volume["hostPath"]["path"].rstrip("/"))
            return ("emptyDir", name)
    return None


def mount_of(pod_spec, container, path):
    """The volume source and subpath under which `path` lies in `container`."""
    best = None
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best[1]):
                best = (volume_source(pod_spec, mount["name"]), prefix)
    if best is None:
        return None
    source, prefix = best
    return (source, os.path.relpath(path, prefix))


def env_printed(driftwatch, socket, shim):
    output = subprocess.run(
        [driftwatch, "env", "--socket", socket, "--shim", shim, "--format", "kubernetes"],
        check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(output)["env"]


def check_service(driftwatch, pod_spec, service, shim_sources, where):
    env = {item["name"]: item["value"] for item in service.get("env", [])}
    shim, socket = env.get("LD_PRELOAD"), env.get("DRIFTWATCH_SOCKET")
    if not check(shim and socket, f"{where}: no LD_PRELOAD or DRIFTWATCH_SOCKET"):
        return None
    check(service["env"] == env_printed(driftwatch, socket, shim),
          f"{where}: the env list is not what `driftwatch env --format kubernetes` prints")
    shim_mount = mount_of(pod_spec, service, os.path.dirname(shim))
    check(shim_mount is not None and shim_mount[0] in shim_sources,
          f"{where}: {shim}'s folder is not mounted from the volume the shim is copied into")
    return mount_of(pod_spec, service, os.path.dirname(socket))


def shim_copies(pod_spec):
    """The volume sources init containers copy the shim into."""
    sources = []
    for init in pod_spec.get("initContainers", []):
        command = init.get("command", [])
        if command[:1] == ["cp"] and command[1].endswith("libdriftwatch.so"):
            sources.append(mount_of(pod_spec, init, command[-1].rstrip("/"))[0])
    return sources


def collector_in(pod_spec):
    for container in pod_spec.get("containers", []):
        if container.get("args", [])[:1] == ["collect"]:
            return container
    return None


def run_collector(driftwatch, args, where):
    """Starts `driftwatch ARGS` with its paths moved under a temporary folder; SIGTERM ends it."""
    with tempfile.TemporaryDirectory() as scratch:
        moved = list(args)
        for flag in ("--socket", "--state"):
            if flag in moved:
                index = moved.index(flag) + 1
                moved[index] = os.path.join(scratch, moved[index].lstrip("/"))
                os.makedirs(os.path.dirname(moved[index]), exist_ok=True)
        if "--metrics" in moved:
            moved[moved.index("--metrics") + 1] = "127.0.0.1:0"
        socket = moved[moved.index("--socket") + 1]
        process = subprocess.Popen([driftwatch] + moved, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while time.time() < deadline and process.poll() is None and not os.path.exists(socket):
            time.sleep(0.05)
        listening = os.path.exists(socket)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=10)
        check(listening and process.returncode == 0,
              f"{where}: `driftwatch {' '.join(args)}` did not run (exit {process.returncode}): "
              f"{errors.strip()[-400:]}")


def check_pod(driftwatch, pod_spec, collector_spec, where, shim_sources):
    services = [c for c in pod_spec["containers"] if c.get("args", [])[:1] != ["collect"]]
    for service in services:
        socket_mount = check_service(driftwatch, pod_spec, service, shim_sources,
                                     f"{where}/{service['name']}")
        collector = collector_in(collector_spec)
        args = collector["args"]
        socket = args[args.index("--socket") + 1]
        check(socket_mount is not None and
              socket_mount == mount_of(collector_spec, collector, os.path.dirname(socket)),
              f"{where}/{service['name']}: the socket's folder is not one volume shared with the "
              "collector")


def main():
    driftwatch, examples, readme = sys.argv[1:4]
    with open(os.path.join(examples, "sidecar.yaml")) as file:
        sidecar_text = file.read()
    pod = yaml.safe_load(sidecar_text)
    spec = pod["spec"]
    check(spec.get("shareProcessNamespace") is True, "sidecar: shareProcessNamespace is not set")
    check_pod(driftwatch, spec, spec, "sidecar", shim_copies(spec))
    collector = collector_in(spec)
    check("SYS_PTRACE" in collector["securityContext"]["capabilities"]["add"],
          "sidecar: the collector cannot read the service's files (SYS_PTRACE)")
    run_collector(driftwatch, collector["args"], "sidecar")

    with open(os.path.join(examples, "daemonset.yaml")) as file:
        daemonset, node_pod = list(yaml.safe_load_all(file))
    collector_spec = daemonset["spec"]["template"]["spec"]
    check(collector_spec.get("hostPID") is True, "daemonset: hostPID is not set")
    check_pod(driftwatch, node_pod["spec"], collector_spec, "daemonset",
              shim_copies(collector_spec))
    run_collector(driftwatch, collector_in(collector_spec)["args"], "daemonset")

    with open(readme) as file:
        check(f"```yaml\n{sidecar_text}```" in file.read(),
              "README does not show examples/kubernetes/sidecar.yaml as it is")

    for failure in failures:
        print(f"FAIL: {failure}")
    print(f"{'FAILED' if failures else 'passed'}: kubernetes examples")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
