"""The ``geopre`` command line: parse, build a config, call one library function, report.

Every user mistake raises :class:`geopre.errors.UserError`, printed here as one line with a
non-zero exit; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys

import click

from geopre import __version__
from geopre.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="geopre")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """geopre: turn uncalibrated driving video into better monocular depth networks.

    Pipeline: synth/serve (offline test world) -> ingest -> shard -> pretrain -> finetune -> evaluate.
    Run `geopre COMMAND --help` for each stage's options.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register_commands() -> None:
    # Sub-command modules import torch/cv2 lazily inside their functions so `geopre --help` stays fast.
    from geopre.demo import demo
    from geopre.ingest.cli import ingest
    from geopre.reproduce.cli import reproduce
    from geopre.shards.cli import shard
    from geopre.synth.cli import serve, synth
    from geopre.train.cli import evaluate, export, finetune, predict, pretrain

    for command in (synth, serve, ingest, shard, pretrain, export, finetune, evaluate, predict, demo, reproduce):
        cli.add_command(command)


_register_commands()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _LevelPrefix(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"geopre: {record.levelname.lower()}: {record.getMessage()}"


def configure_logging(debug: bool) -> None:
    """geopre's warnings reach stderr as ``geopre: warning: ...`` lines, told apart from the one
    ``geopre: error: ...`` line of a failure; ``--debug`` adds every geopre module's debug records
    with their logger names. Configured once per process (tests call :func:`main` many times)."""
    logger = logging.getLogger("geopre")
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        logger.addHandler(handler)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s") if debug else _LevelPrefix())
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors for user mistakes, traceback only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    configure_logging(debug)
    try:
        # Without standalone mode click *returns* a command's ctx.exit(code) instead of exiting.
        code = cli.main(args=args, prog_name="geopre", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserError as err:
        if debug:
            raise
        click.echo(f"geopre: error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("geopre: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt as err:
        # A training run's interruption says where it saved (geopre.train.run.RunInterrupted).
        click.echo("geopre: interrupted" + (f": {err}" if str(err) else ""), err=True)
        sys.exit(130)
    except click.UsageError as err:
        # One line, like every other user mistake: click's usage block would bury the reason.
        command = err.ctx.command_path if err.ctx is not None else "geopre"
        click.echo(f"geopre: error: {err.format_message()} (see `{command} --help`)", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
