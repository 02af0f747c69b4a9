r"""`localgrad-export`: a trained model as a SavedModel for serving.

Reads `{workdir}/model.keras` (written by localgrad-train when training ends)
and writes a SavedModel that holds only the weights its endpoints read:
`serve` (the network; `serving_default`), `serve_ensemble` with
`--ensemble=n` (the last n heads' mean log-probabilities) and
`serve_exit_k` with `--early_exits` (an exit after block k). Prints the
export's variables, parameters and bytes against the training model's.

    localgrad-export --workdir=/tmp/run --output=/tmp/export \
        --ensemble=2 --early_exits=all --tflite

Then, with TensorFlow only:

    loaded = tf.saved_model.load("/tmp/export")
    loaded.serve(images)["predicted_class"]
"""

from absl import app, flags, logging

from localgrad import binaries

flags.DEFINE_string("workdir", None, "localgrad-train's --workdir.")
flags.DEFINE_string("output", None, "The SavedModel directory to write.")
flags.DEFINE_integer(
    "ensemble", None, "Add serve_ensemble: the last n heads vote (1..K)."
)
flags.DEFINE_list(
    "early_exits",
    [],
    "Add serve_exit_k for these blocks (0..K-2), or 'all'.",
)
flags.DEFINE_bool("tflite", False, "Also write OUTPUT/model.tflite.")
flags.DEFINE_float(
    "adaptive_threshold",
    None,
    "Associated Learning: add serve_adaptive, exiting each example at the "
    "first depth whose largest probability reaches this threshold.",
)
flags.mark_flags_as_required(["workdir", "output"])
FLAGS = flags.FLAGS


def _early_exits(values):
    if values == ["all"]:
        return True
    try:
        return [int(value) for value in values]
    except ValueError:
        raise app.UsageError(
            f"--early_exits={','.join(values)}: give 'all' or block "
            "indices such as 0,2."
        ) from None


def main() -> None:
    """Runs `localgrad-export` with the command line's flags."""
    binaries.run(_main)


def _main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from localgrad import export

    report = export.export_workdir(
        FLAGS.workdir,
        FLAGS.output,
        ensemble=FLAGS.ensemble,
        early_exits=_early_exits(FLAGS.early_exits),
        tflite=FLAGS.tflite,
        adaptive_threshold=FLAGS.adaptive_threshold,
    )
    print(report)


if __name__ == "__main__":
    main()
