"""The `lesionviewer` command: the desktop app by default, plus analyze, train and evaluate.

Each sub-command's module is imported only when that command runs, so launching the app does
not import the training code and `analyze` does not import Qt.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

COMMANDS = {
    "gui": ("lesionviewer.app.launch", "open the desktop app (the default)"),
    "analyze": ("lesionviewer.analyze_cli", "segment images; write masks, maps and JSON"),
    "evaluate": ("lesionviewer.training.evaluate", "measure a model on data with expert masks"),
    "synth": ("lesionviewer.training.synth.generate", "synthesise image-mask pairs from masks with a synthesis model"),
    "evaluate-synth": ("lesionviewer.training.synth.evaluate", "measure a synthesis model: realism, mask fidelity, label-fraction gain"),
    "cases": ("lesionviewer.cases_cli", "the case store: import, status, export, grant"),
}
TRAIN_COMMANDS = {
    "backbone": ("lesionviewer.training.backbone", "the class-conditional DDPM"),
    "heads": ("lesionviewer.training.heads", "probe ensemble, malignancy head, DiffSeg and CRF settings"),
    "card": ("lesionviewer.training.model_card", "write MODEL_CARD.md from the model's records"),
    "calibrate": ("lesionviewer.training.trust_calibrate", "malignancy calibration and range, OOD cut-off on val's calibration half"),
    "uncertainty": ("lesionviewer.training.uncertainty_fit", "sampling design and GED cut-offs on val's calibration half"),
    "synth": ("lesionviewer.training.synth.train", "the Siamese-Diffusion mask-to-image synthesis model"),
}


def _top_parser() -> argparse.ArgumentParser:
    from lesionviewer import __version__

    p = argparse.ArgumentParser(
        prog="lesionviewer",
        description="Skin-lesion segmentation with a diffusion model. Without a command, opens the app.",
        epilog="commands:\n" + "\n".join(
            f"  {name:<22}{text}" for name, text in [
                *((c, h) for c, (_, h) in COMMANDS.items()),
                *((f"train {c}", h) for c, (_, h) in TRAIN_COMMANDS.items())]),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # one command per line
    )
    p.add_argument("--version", action="version", version=f"lesionviewer {__version__}")
    p.add_argument("--selftest", action="store_true",
                   help="check this installation (model, sample analysis, window) and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "--version"):
        _top_parser().parse_args(argv)
        return 0
    if argv and argv[0] == "--selftest":  # for IT after an install: see lesionviewer/selftest.py
        from lesionviewer import selftest

        parser = argparse.ArgumentParser(prog="lesionviewer --selftest", description=selftest.__doc__.splitlines()[0])
        selftest.add_arguments(parser)
        return selftest.run(parser.parse_args(argv[1:]))
    command = argv.pop(0) if argv and argv[0] in (*COMMANDS, "train") else "gui"
    if command == "train":
        if not argv or argv[0] not in TRAIN_COMMANDS:
            print(f"usage: lesionviewer train {{{','.join(TRAIN_COMMANDS)}}} ...", file=sys.stderr)
            return 2
        what = argv.pop(0)
        module_name, help_text = TRAIN_COMMANDS[what]
        prog = f"lesionviewer train {what}"
    else:
        module_name, help_text = COMMANDS[command]
        prog = f"lesionviewer {command}"
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=prog, description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    args.command_line = shlex.join([*prog.split(), *argv])  # model cards quote it
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
