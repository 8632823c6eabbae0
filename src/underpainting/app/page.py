"""The page: Gradio widgets over `underpainting.app.jobs.run_job`, which runs the same `SketchPipeline` as infer.py.
Nothing here computes about images: decoding, backdrops and painting live in the library."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from functools import wraps
from pathlib import Path
from tempfile import mkdtemp

import gradio as gr
from hydra.utils import instantiate
from omegaconf import DictConfig

from underpainting.app.choices import checkpoint_choices, initial_stages, stage_options, style_paintings
from underpainting.app.compose import Composer
from underpainting.app.jobs import JobRequest, JobResult, run_job
from underpainting.data.canvas import (
    decode_canvas,
    label_map_image,
    load_backdrop,
    read_sketch_upload,
    resize_layers,
    sketch_layer,
)
from underpainting.data.images import pixel_limit
from underpainting.data.labels import LabelSet
from underpainting.errors import UserError
from underpainting.runtime.malloc import release_free_memory

log = logging.getLogger(__name__)

SYNTHETIC, UPLOADED = "synthetic", "uploaded"
TRACE = {
    "nothing": "nothing",
    "picture": "a picture",
    "xray": "an X-ray (lightened)",
    "style": "the style painting",
}
IMAGE_TYPES = ["image"]

# Hovering a brush colour shows its class name (the swatches themselves carry none).
SWATCH_TITLES_JS = """
() => {
  const names = %s;
  const name = (c) => names[c.replace(/\\s/g, "")];
  new MutationObserver(() => {
    document.querySelectorAll("#canvas button.color").forEach((b) => {
      const n = name(b.style.backgroundColor || "");
      if (n && b.title !== n) { b.title = n; b.setAttribute("aria-label", n); }
    });
  }).observe(document.body, {subtree: true, childList: true});
}
"""
CSS = """
#legend .swatch {display:inline-block; width:0.9em; height:0.9em; border:1px solid #555; margin:0 0.2em 0 0.6em;
                 vertical-align:middle}
"""


def user_errors(fn, max_pixels: int | None = None):
    """A UserError is shown on the page as infer.py prints it; anything else as a one-line error (traceback in
    the server log). The server keeps serving either way. Images read inside obey `max_pixels` (`app.max_pixels`)."""

    @wraps(fn)
    def inner(*args, **kwargs):
        try:
            with pixel_limit(max_pixels, "app.max_pixels") if max_pixels else contextlib.nullcontext():
                return fn(*args, **kwargs)
        except UserError as err:
            raise gr.Error(str(err), title="error", duration=None) from None
        except gr.Error:
            raise
        except Exception as err:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"unexpected {type(err).__name__}: {err} (see the server log)", duration=None
            ) from None

    return inner


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def legend_html(labels: LabelSet) -> str:
    parts = [f'<span class="swatch" style="background:{_hex(c.rgb)}"></span>{c.name}' for c in labels.classes]
    return "<b>Brushes</b> (the brush colour menu, in this order): " + " ".join(parts)


class Page:
    """Builds the Blocks once; lists (checkpoints, styles) are refreshed on every page load."""

    def __init__(self, composer: Composer, settings: DictConfig) -> None:
        self.composer, self.settings = composer, settings
        base = composer.base()
        self.labels: LabelSet = instantiate(base.labels)
        self.default_seed = int(base.seed)
        self.stages = stage_options(composer)
        self.run_root = Path(settings.run_dir)
        self.scratch = Path(mkdtemp(prefix="underpainting-app-"))  # label maps made from the canvas
        self.max_pixels = int(settings.max_pixels)  # every upload and job (conf/app/default.yaml says why)

    # ------------------------------------------------------------------------------------------------ lists
    def ckpt_update(self, option: str | None, group: str, value=None) -> dict:
        stage = (self.stages.first if group == "infer/stage1" else self.stages.second).get(option or "")
        if stage is None or stage.checkpoint_key is None:
            return gr.update(visible=False, choices=[], value=None)
        published = self.settings.published.get(stage.option) or []
        choices = checkpoint_choices(stage, Path(self.settings.train_dir), list(published))
        values = [v for _, v in choices]
        keep = value if value else (values[0] if values else None)
        return gr.update(
            visible=True, choices=choices, value=keep, label=f"{stage.option}: `{stage.checkpoint_key}`"
        )

    def style_choices(self) -> list[tuple[str, str]]:
        shipped = [(s.name, str(s.painting)) for s in style_paintings(Path(self.settings.styles_dir))]
        return [
            ("a synthetic Van Gogh-like painting", SYNTHETIC),
            *shipped,
            ("my painting (upload below)", UPLOADED),
        ]

    def _style_files(self, choice: str, painting, labels) -> tuple[str | None, str | None]:
        if choice == SYNTHETIC or not choice:
            return None, None
        if choice == UPLOADED:
            if not painting:
                raise UserError(
                    "style: choose a painting file to upload (and its label map), or another style"
                )
            return painting, labels
        shipped = {str(s.painting): s for s in style_paintings(Path(self.settings.styles_dir))}
        if choice not in shipped:
            raise UserError(f"style painting {choice} is gone from {self.settings.styles_dir}")
        return str(shipped[choice].painting), str(shipped[choice].labels)

    # ------------------------------------------------------------------------------------------------ canvas
    def blank(self) -> dict:
        from PIL import Image

        size = (int(self.settings.canvas.width), int(self.settings.canvas.height))
        return {"background": Image.new("RGB", size, "white"), "layers": [], "composite": None}

    def decode(self, editor: dict | None):
        c = self.settings.canvas
        layers = (editor or {}).get("layers") or []
        return decode_canvas(layers, self.labels, str(c.unpainted), int(c.alpha_threshold))

    @staticmethod
    def _size(editor: dict | None) -> tuple[int, int] | None:
        bg = (editor or {}).get("background")
        return None if bg is None else (bg.shape[1], bg.shape[0])

    def load_upload(self, path: str | None, editor: dict | None):
        """An uploaded sketch or label map becomes an opaque stroke layer over the current backdrop."""
        if not path:
            return gr.update()
        from PIL import Image

        ids = read_sketch_upload(path, self.labels)
        layer = sketch_layer(ids, self.labels)
        bg = (editor or {}).get("background")
        if bg is None or (bg.shape[1], bg.shape[0]) != layer.size:
            bg = Image.new("RGB", layer.size, "white")
        return {"background": bg, "layers": [layer], "composite": None}

    def set_backdrop(self, mode: str, picture, style: str, style_painting, editor: dict | None):
        """Put a picture under the strokes (they are kept, moved onto the new canvas size)."""
        from PIL import Image

        side = int(self.settings.canvas.backdrop_side)
        if mode == "nothing":
            size = self._size(editor) or (int(self.settings.canvas.width), int(self.settings.canvas.height))
            bg = Image.new("RGB", size, "white")
        elif mode in ("picture", "xray"):
            if not picture:
                return gr.update()
            bg = load_backdrop(picture, side, xray=mode == "xray")
        else:
            painting, _ = self._style_files(style, style_painting, None)
            if painting is None:
                raise UserError(
                    "trace over the style painting: choose a style painting first (not synthetic)"
                )
            bg = load_backdrop(painting, side)
        layers = resize_layers((editor or {}).get("layers") or [], bg.size)
        return {"background": bg, "layers": layers, "composite": None}

    def canvas_as_style_labels(self, editor: dict | None):
        """The canvas, decoded, as the uploaded style painting's label map (paint it while tracing over it)."""
        ids = self.decode(editor)
        path = self.scratch / f"style_labels_{len(list(self.scratch.iterdir()))}.png"
        label_map_image(ids).save(path)
        return str(path), UPLOADED

    # ------------------------------------------------------------------------------------------------ jobs
    def request(self, v: dict) -> JobRequest:
        """The job from the named choices (the API's parameter names: see `choice_names`)."""
        stage1, stage2 = v["stage1"], list(v["stage2"] or [])
        checkpoints = {}
        first = self.stages.first.get(stage1)
        if first is not None and first.checkpoint_key and v["stage1_checkpoint"]:
            checkpoints[first.checkpoint_key] = str(v["stage1_checkpoint"])
        for name in self.widgets["ckpt2"]:
            if name in stage2 and v[f"{name}_checkpoint"]:
                checkpoints[self.stages.second[name].checkpoint_key] = str(v[f"{name}_checkpoint"])
        painting = labels = None
        if any(self.stages.second[n].uses_style for n in stage2 if n in self.stages.second):
            painting, labels = self._style_files(v["style"], v["style_painting"], v["style_labels"])
        return JobRequest(
            stage1=stage1, stage2=stage2, checkpoints=checkpoints, style_painting=painting, style_labels=labels,
            xray=v["xray"] or None, size=int(v["size"] or 0), steps=int(v["steps"] or 0),
            seed=None if v["seed"] is None else int(v["seed"]),
        )  # fmt: skip

    def run(self, ids, values: dict, progress: gr.Progress) -> tuple:
        request = self.request(values)

        def on_stage(name: str, done: int, total: int) -> None:
            progress(done / max(total, 1), desc=name)

        progress(0, desc="loading the stages")
        try:
            result = run_job(ids, request, self.stages, self.composer, self.run_root, self.labels, on_stage)
        finally:
            release_free_memory()  # the job's buffers back to the system, not kept by this worker thread
        return self.show(result)

    def show(self, r: JobResult) -> tuple:
        names = list(r.images)
        last = names[-1] if len(names) > 2 else None
        gallery = [(str(r.sheet), "contact sheet"), *((str(p), n) for n, p in r.images.items())]
        status = (
            f"**done** in {r.seconds:.1f} s: `{r.run_dir}` (config, inputs and every image; "
            "`python -m underpainting.compare outputs/` lists it)"
        )
        files = [str(r.archive), str(r.sheet), *(str(p) for p in r.images.values())]
        painting = str(r.images[last]) if last else None
        return status, str(r.sheet), painting, str(r.images["labels"]), gallery, files

    # ------------------------------------------------------------------------------------------------ layout
    def build(self) -> gr.Blocks:
        s, c = self.settings, self.settings.canvas
        stage1_init, stage2_init = initial_stages(s, self.stages)
        w: dict = {}
        with gr.Blocks(title="underpainting: paint a sketch", analytics_enabled=False) as demo:
            gr.Markdown(
                "## underpainting: paint a sketch, get paintings back\n"
                "Paint regions with the class brushes (brush size and eraser in the brush menu, undo/redo at the "
                "top), or upload a sketch or a label map; choose the stages; **Paint**. Every job is written to "
                f"`{s.run_dir}/<time>_<stage 1>/` like an `infer.py` run. One job runs at a time; others queue."
            )
            with gr.Row():
                with gr.Column(scale=3):
                    gr.HTML(legend_html(self.labels), elem_id="legend")
                    colours = [_hex(k.rgb) for k in self.labels.classes]
                    w["canvas"] = gr.ImageEditor(
                        value=self.blank(), type="numpy", image_mode="RGBA", label="sketch", elem_id="canvas",
                        sources=(), transforms=(), layers=False, fixed_canvas=False,
                        canvas_size=(int(c.width), int(c.height)),
                        brush=gr.Brush(colors=colours, color_mode="fixed", default_size=int(c.brush_size),
                                       default_color=colours[min(1, len(colours) - 1)]),
                        eraser=gr.Eraser(default_size=int(c.brush_size)),
                    )  # fmt: skip
                    with gr.Row():
                        w["upload"] = gr.File(label="a sketch or a label map (loads into the canvas)",
                                              file_types=IMAGE_TYPES, elem_id="upload")  # fmt: skip
                        with gr.Column():
                            w["trace"] = gr.Radio([(v, k) for k, v in TRACE.items()], value="nothing",
                                                  label="trace over", elem_id="trace")  # fmt: skip
                            w["picture"] = gr.File(label="picture to trace over (photo, painting, hidden X-ray)",
                                                   file_types=IMAGE_TYPES, elem_id="picture")  # fmt: skip
                with gr.Column(scale=2):
                    w["stage1"] = gr.Dropdown(
                        [(f"{o.option}: {o.title}", o.option) for o in self.stages.first.values()],
                        value=stage1_init, label="stage 1: sketch -> scene (conf/infer/stage1)", elem_id="stage1",
                    )  # fmt: skip
                    w["ckpt1"] = gr.Dropdown(
                        allow_custom_value=True, elem_id="ckpt1", **self._ckpt_kw(stage1_init, "infer/stage1")
                    )
                    w["stage2"] = gr.CheckboxGroup(
                        [(f"{o.option}: {o.title}", o.option) for o in self.stages.second.values()],
                        value=stage2_init, label="stage 2: scene -> paintings (conf/infer/stage2)", elem_id="stage2",
                    )  # fmt: skip
                    w["ckpt2"] = {}
                    for name, o in self.stages.second.items():
                        if o.checkpoint_key:
                            kw = self._ckpt_kw(name, "infer/stage2")
                            kw["visible"] = kw["visible"] and name in stage2_init
                            w["ckpt2"][name] = gr.Dropdown(
                                allow_custom_value=True, elem_id=f"ckpt2_{name}", **kw
                            )
                    uses_style = any(self.stages.second[n].uses_style for n in stage2_init)
                    with gr.Group(visible=uses_style) as w["style_group"]:
                        first = next(
                            (v for _, v in self.style_choices() if v not in (SYNTHETIC, UPLOADED)), SYNTHETIC
                        )
                        w["style"] = gr.Dropdown(self.style_choices(), value=first, label="style painting",
                                                 elem_id="style")  # fmt: skip
                        w["style_painting"] = gr.File(
                            label="my painting", file_types=IMAGE_TYPES, type="filepath"
                        )
                        w["style_labels"] = gr.File(label="its label map (sketch in the palette or 8-bit class ids)",
                                                    file_types=IMAGE_TYPES, type="filepath", elem_id="style_labels")  # fmt: skip
                        w["use_canvas"] = gr.Button("use the canvas as my painting's label map", size="sm")
                    w["xray"] = gr.File(
                        label="hidden X-ray (`xray=`; `python -m underpainting.xray separate`)", file_types=IMAGE_TYPES,
                        visible=any(self.stages.second[n].uses_xray for n in stage2_init), elem_id="xray",
                    )  # fmt: skip
                    with gr.Row():
                        w["size"] = gr.Slider(
                            0,
                            1024,
                            value=int(s.initial.size),
                            step=32,
                            label="size: long side, px (0: the canvas's)",
                        )
                        w["steps"] = gr.Slider(
                            0,
                            1000,
                            value=int(s.initial.steps),
                            step=10,
                            label="painter / NST / doodle steps (0: their configs')",
                        )
                    w["seed"] = gr.Number(value=self.default_seed, precision=0, label="seed")
                    with gr.Row():
                        w["paint"] = gr.Button("Paint", variant="primary", elem_id="paint")
                        w["paint_file"] = gr.Button("Paint the uploaded file as it is", elem_id="paint_file")
                        w["refresh"] = gr.Button("refresh lists", size="sm")
            w["status"] = gr.Markdown(elem_id="status", label="status")
            with gr.Row():
                w["sheet"] = gr.Image(
                    label="contact sheet", type="filepath", format="png", interactive=False, elem_id="sheet"
                )
            with gr.Row():
                w["painting"] = gr.Image(
                    label="painting", type="filepath", format="png", interactive=False, elem_id="painting"
                )
                w["labels"] = gr.Image(
                    label="decoded labels", type="filepath", format="png", interactive=False, elem_id="labels"
                )
            w["gallery"] = gr.Gallery(label="every image", columns=4, format="png", elem_id="images")
            w["files"] = gr.File(
                label="downloads (the run folder as a zip, and each image)",
                file_count="multiple",
                elem_id="files",
            )
            self.widgets = w
            self._wire(demo)
        return demo

    def _ckpt_kw(self, option: str, group: str) -> dict:
        u = self.ckpt_update(option, group)
        return {k: u.get(k) for k in ("choices", "value", "visible", "label")}

    def _wire(self, demo: gr.Blocks) -> None:
        w = self.widgets
        ckpt2 = list(w["ckpt2"].items())
        names = ["stage1", "stage1_checkpoint", "stage2", *(f"{n}_checkpoint" for n, _ in ckpt2), "style",
                 "style_painting", "style_labels", "xray", "size", "steps", "seed"]  # fmt: skip
        comps = [w["stage1"], w["ckpt1"], w["stage2"], *(dd for _, dd in ckpt2), w["style"], w["style_painting"],
                 w["style_labels"], w["xray"], w["size"], w["steps"], w["seed"]]  # fmt: skip
        outputs = [w[k] for k in ("status", "sheet", "painting", "labels", "gallery", "files")]
        queue = {"concurrency_limit": int(self.settings.queue.concurrency), "concurrency_id": "paint"}

        def endpoint(first: str, read):
            """A handler whose signature names every choice, so the API (gradio_client) has readable names."""

            def handler(*args):
                *values, progress = args
                v = dict(zip([first, *names], values, strict=True))
                return self.run(read(v[first]), v, progress)

            params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in [first, *names]]
            progress = inspect.Parameter(
                "progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress(track_tqdm=True)
            )
            handler.__signature__ = inspect.Signature([*params, progress])
            return user_errors(handler, self.max_pixels)

        def read_upload(path: str | None):
            if not path:
                raise UserError("no file uploaded: choose a sketch or a label map under the canvas first")
            return read_sketch_upload(path, self.labels)

        paint, paint_sketch = endpoint("canvas", self.decode), endpoint("sketch", read_upload)
        w["paint"].click(paint, [w["canvas"], *comps], outputs, api_name="paint", **queue)
        w["paint_file"].click(paint_sketch, [w["upload"], *comps], outputs, api_name="paint_sketch", **queue)

        w["upload"].upload(
            user_errors(self.load_upload, self.max_pixels),
            [w["upload"], w["canvas"]],
            w["canvas"],
            api_name=False,
        )
        backdrop_inputs = [w["trace"], w["picture"], w["style"], w["style_painting"], w["canvas"]]
        for trigger in (w["trace"].change, w["picture"].upload):
            trigger(
                user_errors(self.set_backdrop, self.max_pixels), backdrop_inputs, w["canvas"], api_name=False
            )
        w["use_canvas"].click(user_errors(self.canvas_as_style_labels), w["canvas"], [w["style_labels"], w["style"]],
                              api_name=False)  # fmt: skip

        def on_stage1(option):
            return self.ckpt_update(option, "infer/stage1")

        w["stage1"].change(on_stage1, w["stage1"], w["ckpt1"], api_name=False)

        def on_stage2(chosen):
            chosen = chosen or []
            ups = [gr.update(visible=name in chosen) for name, _ in ckpt2]
            style = any(self.stages.second[n].uses_style for n in chosen)
            xray = any(self.stages.second[n].uses_xray for n in chosen)
            return [*ups, gr.update(visible=style), gr.update(visible=xray)]

        w["stage2"].change(
            on_stage2, w["stage2"], [*(dd for _, dd in ckpt2), w["style_group"], w["xray"]], api_name=False
        )

        def refresh(stage1, *values):
            ups = [self.ckpt_update(stage1, "infer/stage1", values[0])]
            for (name, _), value in zip(ckpt2, values[1:-1], strict=True):
                u = self.ckpt_update(name, "infer/stage2", value)
                u.pop("visible", None)
                ups.append(u)
            return [*ups, gr.update(choices=self.style_choices(), value=values[-1])]

        refresh_io = [w["stage1"], w["ckpt1"], *(dd for _, dd in ckpt2), w["style"]]
        for trigger in (demo.load, w["refresh"].click):
            trigger(refresh, refresh_io, refresh_io[1:], api_name=False)


def build_page(composer: Composer, settings: DictConfig) -> tuple[gr.Blocks, Page]:
    page = Page(composer, settings)
    demo = page.build()
    demo.queue(
        default_concurrency_limit=int(settings.queue.concurrency), max_size=int(settings.queue.max_size)
    )
    return demo, page


def launch_kwargs(settings: DictConfig, page: Page) -> dict:
    """Loopback by default, no share link unless asked, uploads capped, nothing fetched from outside."""
    colours = {"rgb({},{},{})".format(*k.rgb): k.name for k in page.labels.classes}
    return {
        "server_name": str(settings.host),
        "server_port": int(settings.port),
        "share": bool(settings.share),
        "max_file_size": f"{int(settings.max_upload_mb)}mb",
        "allowed_paths": [str(Path(settings.run_dir).resolve())],
        "show_error": True,
        "ssr_mode": False,
        "mcp_server": False,
        "pwa": False,
        "enable_monitoring": False,
        "css": CSS,
        "js": SWATCH_TITLES_JS % json.dumps(colours),
    }
