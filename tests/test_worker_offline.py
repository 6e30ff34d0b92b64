"""Online access off means no connection at all, whatever the worker command asks for."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from conftest import run_worker


class Listener:
    """A local TCP port standing in for the model hub and any proxy: it counts who connects."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()  # the client sees a dropped connection at once instead of waiting

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def hub():
    listener = Listener()
    yield listener
    listener.close()


def _net_env(hub: Listener) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HTTPS_PROXY": hub.url, "HTTP_PROXY": hub.url, "HF_HUB_ETAG_TIMEOUT": "2",
            "HF_HUB_DOWNLOAD_TIMEOUT": "2"}


@pytest.mark.parametrize("env", [{"MONOCLE_ONLINE": "0"}, {"MONOCLE_ONLINE": "off"}, {"HF_HUB_OFFLINE": "1"}])
def test_download_refuses_when_offline(ext_dir, tmp_path, hub, env):
    t = time.monotonic()
    code, events, err = run_worker(ext_dir, "download", "--model", "someone/some-model", "--cache-dir",
                                   str(tmp_path / "hub"), **_net_env(hub), **env)
    assert code == 1, err
    assert [e["event"] for e in events] == ["error"]
    assert events[0]["code"] == "offline" and "someone/some-model" in events[0]["message"]
    assert events[0]["message"].endswith(").") and "\n" not in events[0]["message"]
    assert hub.connections == 0
    assert time.monotonic() - t < 20
    assert not (tmp_path / "hub").exists()


def test_offline_environment_overrides_online_flag(ext_dir, tmp_path, hub):
    """``--online`` on a command is vetoed by MONOCLE_ONLINE=0: the model is missing, nothing is fetched."""
    code, events, err = run_worker(
        ext_dir, "load", "--depth-model", "someone/some-depth", "--seg-model", "classic", "--cache-dir",
        str(tmp_path / "hub"), "--device", "cpu", "--online", **_net_env(hub), MONOCLE_ONLINE="0",
    )
    errors = [e for e in events if e["event"] == "error"]
    if errors and errors[0]["code"] == "dependencies_missing":
        pytest.skip("the transformers engine is not installed")
    assert code == 1, err
    assert errors[-1]["code"] == "model_missing" and "online access is off" in errors[-1]["message"]
    assert hub.connections == 0


def test_download_with_online_access_goes_out(ext_dir, tmp_path, hub):
    """The control: the same command with online access on does reach the (fake) hub."""
    code, events, _ = run_worker(ext_dir, "download", "--model", "someone/some-model", "--cache-dir",
                                 str(tmp_path / "hub"), **_net_env(hub), MONOCLE_ONLINE="1", timeout=120)
    assert code == 1 and events[-1]["code"] in ("download_failed", "model_missing")
    assert hub.connections > 0
