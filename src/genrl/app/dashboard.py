"""The dashboard page of ``genrl app``: a local gradio app over :class:`genrl.app.dashboard_core.Dashboard`.

Three tabs:

* **Prompt** — pick a world model (pre-training run or shipped model), type a text prompt or upload a video; the
  decoded target (the connector's reading of the prompt) plays as a video, with the dataset clips nearest to it;
* **Behaviors** — the behavior runs under a folder (task, prompt, normalized score); one run's decoded target,
  rollout video and learning curve side by side; a form starting a new ``genrl behave`` in the background (one job
  at a time, resumable, with progress);
* **Compare** — the ``genrl compare`` table of a results folder.

The app is local only: it listens on ``127.0.0.1`` by default, makes no share link and sends no analytics
(``GRADIO_ANALYTICS_ENABLED=False``); gradio is imported only when the page is built.
"""

from __future__ import annotations

import os

from genrl.app.dashboard_core import BEHAVIOR_COLUMNS, Dashboard
from genrl.behavior.config import BehaviorConfig
from genrl.utils.presets import names

INTRO = ("# GenRL dashboard\nA prompt, the world model's reading of it (the decoded target trajectory) and the "
         "behaviors learned for it. Everything runs locally.")


def import_gradio():
    """Import gradio with its analytics and version checks off.

    Raises:
        ImportError: gradio is not installed (``pip install -e ".[app]"``).
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_SSR_MODE", "False")
    import gradio as gr

    return gr


def _prompt_tab(gr, dash: Dashboard) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(dash.models, value=dash.models[0] if dash.models else None, allow_custom_value=True,
                                label="world model (pre-training run folder or shipped model)", elem_id="model")
            prompt = gr.Textbox(label="text prompt", placeholder="e.g. lying on the back", elem_id="prompt")
            video = gr.File(label="or a video prompt (mp4, gif, webm)", elem_id="video-prompt")
            with gr.Accordion("decoding options", open=False):
                horizon = gr.Slider(8, 64, value=32, step=1, label="decoded steps")
                samples = gr.Slider(1, 4, value=4, step=1, label="rollouts side by side (sampled initial states)")
                aligner = gr.Checkbox(False, label="video prompts through the aligner too (text always uses it)")
            button = gr.Button("Decode", variant="primary", elem_id="decode")
            message = gr.Markdown(elem_id="decode-message")
        with gr.Column(scale=2):
            decoded = gr.Video(label="decoded target: the connector's reading of the prompt", autoplay=True,
                               loop=True, interactive=False, elem_id="decoded")
            nearest = gr.Video(label="nearest dataset clips (pixel distance to the first rollout)", autoplay=True,
                               loop=True, interactive=False, elem_id="nearest")
    inputs = [model, prompt, video, horizon, samples, aligner]
    button.click(dash.decode, inputs, [decoded, nearest, message])
    prompt.submit(dash.decode, inputs, [decoded, nearest, message])


def _behaviors_tab(gr, dash: Dashboard) -> tuple:
    def listing(folder):
        rows, runs, msg = dash.list_behaviors(folder)
        runs = runs or []
        return (gr.Dataframe(value=rows or [], headers=BEHAVIOR_COLUMNS),
                gr.Dropdown(choices=runs, value=runs[0] if runs else None), msg)

    with gr.Row():
        folder = gr.Textbox(dash.behaviors_dir, label="folder of behavior runs", elem_id="behaviors-folder", scale=4)
        refresh = gr.Button("List runs", elem_id="list-runs", scale=1)
    list_message = gr.Markdown(elem_id="list-message")
    table = gr.Dataframe(headers=BEHAVIOR_COLUMNS, interactive=False, elem_id="behaviors-table")
    with gr.Row():
        run = gr.Dropdown([], label="behavior run", allow_custom_value=True, elem_id="run", scale=4)
        show = gr.Button("Open run", variant="primary", elem_id="open-run", scale=1)
    run_message = gr.Markdown(elem_id="run-message")
    with gr.Row():
        summary = gr.Markdown(elem_id="run-summary")
        target = gr.Video(label="decoded target (stored in the checkpoint)", autoplay=True, loop=True,
                          interactive=False, elem_id="run-target")
        rollout = gr.Video(label="rollout in the real environment (latest evaluation)", autoplay=True, loop=True,
                           interactive=False, elem_id="run-rollout")
    curve = gr.Image(label="learning curve", type="filepath", interactive=False, elem_id="run-curve")
    refresh.click(listing, folder, [table, run, list_message])
    folder.submit(listing, folder, [table, run, list_message])
    opened = [summary, target, rollout, curve, run_message]
    show.click(dash.show_behavior, run, opened)
    run.input(dash.show_behavior, run, opened)

    with gr.Accordion("Train a new behavior (genrl behave, in the background)", open=False):
        gr.Markdown(f"One job at a time; the run goes to `{dash.new_runs_dir}/NAME`. Starting a run that exists "
                    "with the same settings resumes it from its checkpoint.")
        with gr.Row():
            model = gr.Dropdown(dash.models, value=dash.models[0] if dash.models else None, allow_custom_value=True,
                                label="world model", elem_id="job-model")
            first = dash.tasks_for(dash.models[0]) if dash.models else []
            task = gr.Dropdown(first, value=first[0] if first else None, label="task", elem_id="job-task")
            name = gr.Textbox(label="run name (default: the task)", elem_id="job-name")
        with gr.Row():
            prompt = gr.Textbox(label="text prompt (default: the task's paper prompt)", elem_id="job-prompt")
            preset = gr.Dropdown(list(names(BehaviorConfig)), value="small", label="preset")
            steps = gr.Number(500, precision=0, label="updates")
            episodes = gr.Number(1, precision=0, label="evaluation episodes (at the end)")
            data_free = gr.Checkbox(False, label="data-free start states")
        with gr.Row():
            start = gr.Button("Start / resume", variant="primary", elem_id="job-start")
            stop = gr.Button("Stop", elem_id="job-stop")
        job_message = gr.Markdown(elem_id="job-message")
        job_status = gr.Markdown(dash.job_status(), elem_id="job-status")
    def task_choices(m):
        tasks = dash.tasks_for(m)
        return gr.Dropdown(choices=tasks, value=tasks[0] if tasks else None)

    model.change(task_choices, model, task)
    start.click(dash.start_behave, [model, task, prompt, data_free, preset, steps, episodes, name], job_message)
    stop.click(dash.stop_job, None, job_message)
    gr.Timer(2.0).tick(dash.job_status, None, job_status)
    return folder, [table, run, list_message], listing


def _compare_tab(gr, dash: Dashboard) -> None:
    with gr.Row():
        folder = gr.Textbox(dash.results_dir, label="results folder (every eval.json below it)",
                            elem_id="results-folder", scale=4)
        button = gr.Button("Compare", variant="primary", elem_id="compare", scale=1)
    message = gr.Markdown(elem_id="compare-message")
    table = gr.Markdown(elem_id="compare-table")
    button.click(dash.compare_table, folder, [table, message])
    folder.submit(dash.compare_table, folder, [table, message])


def build_app(dash: Dashboard):
    """The gradio ``Blocks`` page of ``dash`` (not launched).

    Raises:
        ImportError: gradio is not installed.
    """
    gr = import_gradio()
    with gr.Blocks(title="GenRL dashboard", analytics_enabled=False) as app:
        gr.Markdown(INTRO)
        with gr.Tab("Prompt", elem_id="tab-prompt"):
            _prompt_tab(gr, dash)
        with gr.Tab("Behaviors", elem_id="tab-behaviors"):
            folder, listed, listing = _behaviors_tab(gr, dash)
        with gr.Tab("Compare", elem_id="tab-compare"):
            _compare_tab(gr, dash)
        app.load(listing, folder, listed)
    return app


def launch(dash: Dashboard, host: str = "127.0.0.1", port: int | None = None, block: bool = True,
           quiet: bool = False):
    """Build and serve the page on ``http://HOST:PORT`` (no share link, no analytics).

    Args:
        dash: the dashboard state. host / port: where to listen (port None: the first free one from 7860).
        block: serve until interrupted (False: return at once, the server runs in a thread; ``app.close()`` stops).
        quiet: no startup banner.

    Returns:
        ``(app, url)``.
    """
    import threading

    threading.Thread(target=dash.warm_up, name="genrl-app-warm-up", daemon=True).start()
    app = build_app(dash)
    app.queue(default_concurrency_limit=1)
    _, url, _ = app.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=quiet,
                           prevent_thread_lock=True, show_error=False, ssr_mode=False,
                           allowed_paths=[str(dash.cache_dir)])
    if block:
        import signal
        import sys

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain `kill` stops the background job too
        try:
            app.block_thread()
        finally:
            dash.job.stop()
    return app, url


__all__ = ["build_app", "import_gradio", "launch"]
