"""A private PulseAudio server with a virtual microphone: try and test capture without hardware or a sound card.

The server runs with its own runtime, state and home directories in a fresh temporary directory
and a socket there, so it never touches the user's own sound server. It has a null sink
``vmic_sink`` and a virtual source ``vmic`` fed by that sink's monitor; ``vmic`` is the default
source, so whatever is played into ``vmic_sink`` is what a program recording from the default
input (PortAudio's ``pulse`` or ``default`` device) hears. Programs started with ``server.env``
(merged over ``os.environ``) talk to the private server. The tests use it through the ``pulse_server``
fixture (``tests/pulse.py``), and ``scripts/bench.py`` and ``scripts/screenshot.py`` directly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ..process import end_with_parent

__all__ = ["SINK", "SOURCE", "PulseServer", "PulseUnavailable", "missing_pulse_tools"]

SINK = "vmic_sink"
SOURCE = "vmic"
_TOOLS = ("pulseaudio", "pactl", "paplay")


class PulseUnavailable(RuntimeError):
    """The private server could not be started (the message includes its log)."""


def missing_pulse_tools() -> list[str]:
    """The PulseAudio programs the server needs that are not installed (apt: pulseaudio pulseaudio-utils)."""
    return [t for t in _TOOLS if shutil.which(t) is None]


class PulseServer:
    """A private PulseAudio daemon with a virtual microphone.

    Parameters
    ----------
    start_timeout_s : float
        How long to wait for the server to accept connections.

    Attributes
    ----------
    env : dict
        Environment variables that point a client (pactl, paplay, PortAudio via ALSA's pulse plugin)
        at this server and nowhere else.
    sink, source : str
        Names of the null sink to play into and of the virtual source that records it.
    """

    def __init__(self, *, start_timeout_s: float = 20.0) -> None:
        self.start_timeout_s = start_timeout_s
        self.sink = SINK
        self.source = SOURCE
        # Short path on purpose: a unix socket path must stay under ~100 characters.
        self.dir = Path(tempfile.mkdtemp(prefix="ser-live-pulse-"))
        self.runtime_dir = self.dir / "runtime"
        self.runtime_dir.mkdir(mode=0o700)
        self.socket = self.runtime_dir / "native"
        self.log_path = self.dir / "pulse.log"
        self.env = {
            "XDG_RUNTIME_DIR": str(self.dir),
            "PULSE_RUNTIME_PATH": str(self.runtime_dir),
            "PULSE_STATE_PATH": str(self.dir / "state"),
            "PULSE_SERVER": f"unix:{self.socket}",
            # No cookie, no autospawn: a client must find this server or fail, never start another.
            "PULSE_COOKIE": str(self.dir / "cookie"),
            "PULSE_CLIENTCONFIG": str(self._write_client_conf()),
        }
        self._proc: subprocess.Popen | None = None
        self.modules: dict[str, int] = {}

    def _write_client_conf(self) -> Path:
        conf = self.dir / "client.conf"
        conf.write_text("autospawn = no\n")
        return conf

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> PulseServer:
        """Start the daemon, create the virtual microphone and make it the default source."""
        env = {**os.environ, **self.env, "HOME": str(self.dir)}
        cmd = [
            "pulseaudio",
            "-n",  # no default script: no hardware detection, nothing but what we load
            "--daemonize=no",
            "--system=false",  # CI runs as root; a per-user server is still what we want
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disallow-exit=false",
            f"--log-target=file:{self.log_path}",
            "--load=module-native-protocol-unix auth-anonymous=1 socket=" + str(self.socket),
        ]
        self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT, preexec_fn=end_with_parent)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                raise PulseUnavailable(f"pulseaudio exited with status {self._proc.returncode}: {self.log_tail()}")
            if self.socket.exists() and self._pactl_ok("info"):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise PulseUnavailable(f"pulseaudio did not start within {self.start_timeout_s:g} s: {self.log_tail()}")
            time.sleep(0.1)
        self.modules["sink"] = self.load_module(
            "module-null-sink", f"sink_name={self.sink}", "sink_properties=device.description=vmic_sink"
        )
        self.modules["source"] = self.load_module(
            "module-virtual-source", f"source_name={self.source}", f"master={self.sink}.monitor"
        )
        self.pactl("set-default-source", self.source)
        self.pactl("set-default-sink", self.sink)
        return self

    def stop(self) -> None:
        """Stop the daemon and delete its directory. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """Kill the daemon abruptly (a lost sound server), keeping its directory for :meth:`start`."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None
        self.socket.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        """Whether the daemon process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> PulseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control -------------------------------------------------------------------------------
    def client_env(self, **extra: str) -> dict[str, str]:
        """``os.environ`` with this server's variables (and ``extra``) on top, for subprocesses."""
        return {**os.environ, **self.env, **extra}

    def _pactl_ok(self, *args: str) -> bool:
        result = subprocess.run(["pactl", *args], env=self.client_env(), capture_output=True, text=True, timeout=10)
        return result.returncode == 0

    def pactl(self, *args: str) -> str:
        """Run ``pactl`` against this server and return its output (raises on failure)."""
        result = subprocess.run(["pactl", *args], env=self.client_env(), capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            raise PulseUnavailable(f"pactl {' '.join(args)} failed: {result.stderr.strip()} | {self.log_tail()}")
        return result.stdout

    def load_module(self, name: str, *arguments: str) -> int:
        """Load a module and return its index (for :meth:`unload_module`)."""
        return int(self.pactl("load-module", name, *arguments).strip())

    def unload_module(self, index: int) -> None:
        """Unload a module loaded with :meth:`load_module`."""
        self.pactl("unload-module", str(index))

    def play(self, path: str | os.PathLike[str], *, wait: bool = True, timeout_s: float = 60.0) -> subprocess.Popen:
        """Play an audio file into the virtual microphone with ``paplay``.

        Returns the ``paplay`` process (already finished when ``wait`` is true).
        """
        proc = subprocess.Popen(["paplay", "-d", self.sink, str(path)], env=self.client_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            _, err = proc.communicate(timeout=timeout_s)
            if proc.returncode != 0:
                raise PulseUnavailable(f"paplay {path} failed: {err.decode(errors='replace').strip()}")
        return proc

    def log_tail(self, n_lines: int = 15) -> str:
        """The end of the server's log, for failure messages."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " / ".join(lines[-n_lines:])
