"""`python -m underpainting.app [--host H] [--port P] [--share] [overrides...]`: serve the page.

Overrides are Hydra's: `app.*` set the page (conf/app/default.yaml), the rest apply to every job's infer config
(`device=cpu`, `stage2.nst.module.vgg.weights=/path/vgg19.pth`)."""

from __future__ import annotations

import argparse
import os
import sys

from underpainting.errors import UserError, exit_on_user_error

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m underpainting.app", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", help="address to serve on (default app.host: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, help="port (default app.port: 7860)")
    p.add_argument(
        "--share", action="store_true", help="also open a public Gradio share link (off by default)"
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides: app.* for the page, the rest for every job")
    return p.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    overrides = list(args.overrides)
    overrides += [f"app.host={args.host}"] if args.host else []
    overrides += [f"app.port={args.port}"] if args.port else []
    overrides += ["app.share=true"] if args.share else []
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise UserError("the page needs Gradio: pip install 'underpainting[app]'") from None
    from underpainting.app.compose import Composer
    from underpainting.app.page import build_page, launch_kwargs

    composer = Composer(overrides)
    settings = composer.settings()
    demo, page = build_page(composer, settings)
    from underpainting.data.images import guard_decoding

    guard_decoding(
        int(settings.max_pixels)
    )  # Gradio decodes the canvas's images before our handlers see them
    demo.launch(**launch_kwargs(settings, page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
