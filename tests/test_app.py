"""The dashboard ``genrl app``: its callbacks without a browser, the CLI, and the page in a real headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/setup.sh`` installs them) and the
``selenium`` package (the ``test`` extra); it skips, saying which is missing, without them. No browser or driver is
downloaded at run time.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from genrl.app.cli import main
from genrl.app.dashboard_core import ERROR_MARK, Dashboard

pytest.importorskip("gradio", reason="gradio is not installed (the app/test extra)")


@pytest.fixture(scope="module")
def behaviors(tiny_run, tmp_path_factory):
    """A folder with one tiny behavior run (4 updates) and a capped 10-step evaluation with its video."""
    from genrl.behavior.policy import _write_eval, load_policy
    from genrl.behavior.train import BehaveConfig, behave, write_final_eval
    from genrl.envs.rollout import evaluate

    root, vlm = tiny_run
    folder = tmp_path_factory.mktemp("behaviors")
    out = folder / "stand"
    cfg = BehaveConfig(run=str(root / "mfwm"), out=str(out), task="walker_stand", preset="tiny", steps=4,
                       eval_every=0, eval_episodes=0, log_every=1, save_every=2, vlm="minivlm",
                       vlm_path=str(root / "vlm"), device="cpu")
    behave(cfg, progress=False, embedder=vlm)
    policy, _ = load_policy(out, device="cpu")
    result = evaluate(policy, "walker_stand", episodes=1, max_steps=10, video_episodes=1)
    doc = _write_eval(result, out / "evals" / "step_0000004.json", out / "videos" / "eval_0000004.mp4", {"step": 4})
    write_final_eval(out, doc, cfg, "standing up straight")
    return folder


@pytest.fixture
def dash(tiny_run, behaviors, tmp_path):
    root, vlm = tiny_run
    return Dashboard([str(root / "mfwm"), str(behaviors)], embedder=vlm, cache_dir=tmp_path / "cache",
                     behave_args=["--vlm", "minivlm", "--vlm-path", str(root / "vlm"), "--threads", "1"])


def _is_error(message) -> bool:
    return isinstance(message, str) and message.startswith(ERROR_MARK)


# ------------------------------------------------------------------------------------------------ callbacks
def test_text_prompt_gives_a_decoded_video_and_nearest_clips(dash, tiny_run):
    root, _ = tiny_run
    video, clips, message = dash.decode(str(root / "mfwm"), "  lying on the back ", None, horizon=8, samples=2)
    assert not _is_error(message) and "lying on the back" in message, message
    frames = iio.imread(video)
    assert frames.shape == (8, 128, 256, 3)  # 8 steps, 2 rollouts side by side, upscaled 2x
    # the 3 nearest clips, one per episode: the tiny dataset has 2 episodes
    assert iio.imread(clips).shape == (8, 128, 256, 3) and "Nearest clips" in message and message.count(" steps ") == 2


def test_video_prompt_is_decoded(dash, tiny_run, tmp_path):
    from genrl.utils.io import write_video

    root, _ = tiny_run
    prompt = write_video(tmp_path / "prompt.gif", np.random.default_rng(0).integers(0, 255, (6, 48, 40, 3), np.uint8))
    video, _, message = dash.decode(str(root / "mfwm"), "", str(prompt), horizon=8, samples=1)
    assert not _is_error(message) and "prompt.gif" in message and Path(video).is_file()


def test_bad_prompt_inputs_give_a_message(dash, tiny_run, tmp_path):
    root, _ = tiny_run
    run = str(root / "mfwm")
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "broken.mp4").write_bytes(b"\x00garbage" * 20)
    (tmp_path / "empty").mkdir()
    cases = {
        "type a text prompt": (run, "   ", None),
        "not valid UTF-8": (run, b"\xff\xfe standing", None),
        "not valid UTF-8 ": (run, "stand \udcff", None),
        "not both": (run, "standing", str(tmp_path / "notes.txt")),
        "is not a video": (run, "", str(tmp_path / "notes.txt")),
        "cannot read video prompt": (run, "", str(tmp_path / "broken.mp4")),
        "pick a world model": ("", "standing", None),
        "not a pre-training run folder": (str(tmp_path / "nope"), "standing", None),
        "no checkpoint": (str(tmp_path / "empty"), "standing", None),
    }
    for expected, (model, prompt, video) in cases.items():
        out = dash.decode(model, prompt, video, horizon=8, samples=1)
        assert out[:2] == (None, None) and _is_error(out[2]) and expected.strip() in out[2], (expected, out)
        assert "Traceback" not in out[2]


def test_behavior_runs_are_listed_and_opened(dash, behaviors):
    rows, runs, message = dash.list_behaviors(str(behaviors))
    assert runs == [str(behaviors / "stand")] and "1 behavior run" in message
    assert rows[0][:5] == ["stand", "walker_stand", "standing up straight", "offline", "4/4"]
    summary, target, rollout, curve, note = dash.show_behavior(runs[0])
    assert "walker_stand" in summary and "normalized score" in summary and "not evaluated" not in summary
    assert iio.imread(target).shape[0] == 17  # H + 1 target states of the tiny preset (horizon 16)
    assert iio.imread(rollout).shape[0] == 11 and iio.imread(curve).ndim == 3
    assert not _is_error(note)


def test_bad_behavior_folders_give_a_message(dash, tmp_path):
    for folder, expected in ((tmp_path, "holds no behavior runs"), (tmp_path / "nope", "is not a folder")):
        rows, runs, message = dash.list_behaviors(str(folder))
        assert rows is None and runs is None and _is_error(message) and expected in message
    out = dash.show_behavior(str(tmp_path))
    assert out[:4] == (None,) * 4 and _is_error(out[4]) and "is not a behavior run" in out[4]


def test_compare_table(dash, behaviors, tmp_path):
    table, message = dash.compare_table(str(behaviors))
    assert "| walker_stand |" in table and "1 task" in message
    table, message = dash.compare_table(str(tmp_path))
    assert table is None and _is_error(message) and "no eval.json" in message


def test_behave_job_runs_one_at_a_time_and_resumes(dash, tiny_run, tmp_path):
    root, _ = tiny_run
    dash.new_runs_dir = tmp_path
    run = str(root / "mfwm")
    assert _is_error(dash.start_behave(run, "cheetah_run", "", False, "tiny", 2, 0, "x"))  # another domain
    assert _is_error(dash.start_behave(run, "walker_stand", "", False, "tiny", 2, 0, "../x"))  # bad name
    assert _is_error(dash.start_behave(run, "walker_stand", b"\xff", False, "tiny", 2, 0, "x"))
    message = dash.start_behave(run, "walker_stand", "", True, "tiny", 2, 0, "job")
    assert message.startswith("started training") and not _is_error(message), message
    second = dash.start_behave(run, "walker_stand", "", True, "tiny", 2, 0, "job2")
    assert _is_error(second) and "one job at a time" in second
    deadline = time.time() + 240
    while dash.job.running() and time.time() < deadline:
        time.sleep(0.5)
    status = dash.job.status()
    assert status["state"] == "done", status
    assert "Finished" in dash.job_status() and (tmp_path / "job" / "checkpoint" / "state.json").is_file()
    again = dash.start_behave(run, "walker_stand", "", True, "tiny", 3, 0, "job")
    assert again.startswith("resuming") and "update 2" in again, again
    dash.job.stop()


def test_cli_says_to_install_the_extra_without_gradio(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    assert main(["app"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gradio" in err and '.[app]' in err


def test_gradio_is_not_imported_by_the_command_line():
    import subprocess

    code = "import sys; from genrl.app.cli import build_parser; build_parser(); print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_refuses_a_missing_run(capsys):
    assert main(["app", "/nonexistent/run"]) == 2
    assert "not a folder nor a shipped model" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ browser
def _browser_paths() -> tuple[str | None, str | None]:
    """Paths of the system Chromium and chromedriver (None when missing)."""
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    return browser, shutil.which("chromedriver")


def _no_browser_reason() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (the test extra)"
    missing = " and ".join(n for n, p in zip(("chromium", "chromedriver"), _browser_paths()) if not p)
    return f"{missing} not found: apt-get install chromium chromium-driver (scripts/setup.sh does)" if missing else None


def start_browser(width: int = 1400, height: int = 1100):
    """Headless Chromium under selenium, with the system's driver (no download) and network logging on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = _browser_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(driver, predicate, timeout: float = 60.0, what: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: predicate(d), message=what)


def _video_loaded(driver, css: str) -> bool:
    """A <video> under ``css`` whose file the browser has opened (metadata read: its codec is playable)."""
    return bool(driver.execute_script(
        "const v = document.querySelector(arguments[0]); return !!v && !!v.src && v.readyState >= 1 && "
        "v.videoWidth > 0;", css))


def _click(driver, element_id: str) -> None:
    """Click the element with this id once it is rendered and not covered (a busy CPU renders gradio's tabs late,
    and a component's translucent status overlay can still lie over the button just after an event ends)."""
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By

    def click(d) -> bool:
        found = d.find_elements(By.ID, element_id)
        if not found:
            return False
        try:
            found[0].click()
        except ElementClickInterceptedException:
            return False
        return True

    _wait(driver, click, what=f"#{element_id} clickable")


def _text(driver, css: str) -> str:
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)


@pytest.mark.skipif(_no_browser_reason() is not None, reason=str(_no_browser_reason()))
def test_page_in_headless_chromium(dash, tiny_run):
    from selenium.webdriver.common.by import By

    from genrl.app.dashboard import launch

    browser = start_browser()
    app = None
    try:
        app, url = launch(dash, port=free_port(), block=False, quiet=True)
        assert url.startswith("http://127.0.0.1:")
        browser.get(url)
        prompt = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#prompt textarea, #prompt input"),
                       what="prompt box")[0]
        # bad input first: an empty prompt gets a visible message, not a traceback
        _click(browser, "decode")
        _wait(browser, lambda d: "Error" in _text(d, "#decode-message"), what="error message")
        assert "type a text prompt" in _text(browser, "#decode-message")
        prompt.send_keys("standing upright")
        _click(browser, "decode")
        _wait(browser, lambda d: _video_loaded(d, "#decoded video"), what="decoded video")
        _wait(browser, lambda d: _video_loaded(d, "#nearest video"), what="nearest clips video")
        assert "standing upright" in _text(browser, "#decode-message")

        # the behaviors tab: the run listed at load time, opened
        next(t for t in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == "Behaviors").click()
        _wait(browser, lambda d: "1 behavior run" in _text(d, "#list-message"), what="behavior runs listed")
        assert "walker_stand" in _text(browser, "#behaviors-table")
        _click(browser, "open-run")
        _wait(browser, lambda d: _video_loaded(d, "#run-rollout video"), what="rollout video")
        _wait(browser, lambda d: _video_loaded(d, "#run-target video"), what="decoded target video")
        assert "walker_stand" in _text(browser, "#run-summary") and "standing up straight" in _text(browser,
                                                                                                   "#run-summary")
        # nothing was requested from another host than the app (no analytics, fonts or CDNs)

        urls = [json.loads(e["message"])["message"].get("params", {}).get("request", {}).get("url", "")
                for e in browser.get_log("performance")]
        urls = [u for u in urls if u]
        assert any(u.startswith(url) for u in urls)  # the log does record the page's requests
        foreign = [u for u in urls if not u.startswith((url.rstrip("/"), "data:", "blob:"))]
        assert not foreign, foreign
    finally:
        browser.quit()
        if app is not None:
            app.close()
