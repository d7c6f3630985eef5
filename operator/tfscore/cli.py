"""The `tfscore` command line: run · score · doctor · crd · admission · operator · demo.

Heavy imports (Spark, TensorFlow, kopf) happen inside the commands, so `tfscore crd` works in the operator image and
`tfscore run` works without Kubernetes libraries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from tfscore.runlog import RunLog
from tfscore.schedulecli import AT_HELP, schedule_app

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any TensorFlow import, here and in Spark's Python workers

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Kubernetes-native batch inference: TensorFlow SavedModels scored on Spark.")
app.add_typer(schedule_app, name="schedule")


VERBOSE = typer.Option(False, "--verbose", "-v", help="Also show TensorFlow's, the JVM's and Spark's own output "
                       "(otherwise kept in a log file under $TFSCORE_CACHE/logs) and tracebacks.")
ENGINE = typer.Option("auto", "--engine", help="Who runs the tasks: auto (a local run from plain Parquet to plain "
                      "Parquet runs without a JVM, everything else on Spark), local (no JVM; refused for a job that "
                      "needs Spark) or spark.")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def crd(kind: str = typer.Option("ScoringJob", "--kind", help="ScoringJob, ScoringSchedule or ScoringPolicy (or a "
                                                               "plural or short name).")) -> None:
    """Print a CustomResourceDefinition (generated from the pydantic API models)."""
    from tfscore.api.crd import kind_named, render_yaml

    try:
        sys.stdout.write(render_yaml(kind_named(kind)))
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def admission() -> None:
    """Print the chart's ValidatingAdmissionPolicies (charts/tfscore/files/admission-policies.yaml), generated from the
    ScoringPolicy rules."""
    from tfscore.operator.scoringjob.admission import render_yaml

    sys.stdout.write(render_yaml())


@app.command()
def doctor(
    write_manifest: str = typer.Option(None, "--write-manifest", help="When every check passes, write this "
                                       "environment's manifest here (image builds: /opt/tfscore/image-manifest.json)."),
    check_manifest: str = typer.Option(None, "--check-manifest", help="Also fail when this environment differs from "
                                       "the image manifest at PATH."),
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs this process must see (0: no GPU check)."),
    output_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check glibc, CPU features, TensorFlow, Java, Spark, Python and GPUs against what tfscore needs."""
    import json

    from tfscore.runtime.doctor import checks, facts

    report = checks.run(gpus=gpus, manifest=check_manifest)
    sys.stdout.write(json.dumps(report.to_wire(), indent=2) + "\n" if output_json else report.render())
    if not report.ok:
        _fail(report.failure(), code=1)
    if write_manifest:
        facts.write_manifest(write_manifest, facts.labelled(report.manifest))
        if not output_json:
            sys.stdout.write(f"manifest written to {write_manifest}\n")


@app.command("operator")
def operator_(
    namespace: list[str] = typer.Option([], "--namespace", "-n", help="Namespaces to watch (default: all)."),
    liveness: str = typer.Option("http://0.0.0.0:8080/healthz", help="Liveness endpoint."),
    metrics_port: int = typer.Option(9090, help="Prometheus metrics port (0: off)."),
    standalone: bool = typer.Option(False, help="No peering (single replica)."),
    peering: str = typer.Option("", help="kopf peering object the replicas meet in (default: kopf's `default`); "
                                         "give each operator group its own so unrelated kopf operators never pause it."),
) -> None:
    """Run the kopf operator (the control plane)."""
    from tfscore.operator.main import run_operator

    run_operator(namespaces=namespace, liveness=liveness, metrics_port=metrics_port, standalone=standalone,
                 peering_name=peering or None)


def _summary(result) -> str:
    """The end-of-run summary: plain aligned lines (they also read well in a pod's log)."""
    model = result.model
    rows = [("rows in", f"{result.rows_in:,}"), ("rows out", f"{result.rows_out:,}"),
            ("rows quarantined", f"{result.rows_quarantined:,}"), ("seconds", f"{result.seconds:.2f}"),
            ("rows/s", f"{result.rows_per_second:,.0f}"), ("output", result.output_uri)]
    if result.quarantine_uri:
        rows.append(("quarantine", result.quarantine_uri))
    if model is not None:
        rows.append(("model", f"{model.uri} (version {model.version or '-'}, signature {model.signature})"))
        rows.append(("fingerprint", model.fingerprint or "-"))
    return "tfscore: done\n" + "\n".join(f"  {k:<17}{v}" for k, v in rows) + "\n"


def _termination_log(path: str | None) -> Path | None:
    """Where a driver pod reports its result: --termination-log, else the pod's termination log inside a pod."""
    from tfscore.api.contract import TERMINATION_LOG

    if path:
        return Path(path)
    default = Path(TERMINATION_LOG)
    if os.environ.get("POD_NAME") and default.exists() and os.access(default, os.W_OK):
        return default
    return None


def _unexpected(exc: BaseException, log: RunLog) -> str:
    """One sentence for a failure tfscore has no words of its own for; the traceback goes to the run's log (or, with
    --verbose and in pods, to stderr, where the log is)."""
    import traceback

    trace = "".join(traceback.format_exception(exc))
    if log.path is not None:
        log.write(trace)
        where = f"details in {log.path}"
    else:
        sys.stderr.write(trace)
        where = "details above"
    from tfscore.runtime.errors import cause

    first = cause(exc)
    return f"tfscore failed unexpectedly: {type(exc).__name__}: {first} ({where}; please report it)"


def _report_failure(term: Path | None, reason: str, message: str) -> None:
    """The termination message of a failed run: contract.Failure (reason + the one sentence), within the kubelet's limit."""
    import json

    from tfscore.api.contract import MAX_TERMINATION_MESSAGE, Failure

    if term:
        room = MAX_TERMINATION_MESSAGE - len(reason) - 40
        term.write_text(json.dumps(Failure(reason=reason, message=message[:room]).to_wire()))


def _execute(job, master: str | None, spark_properties: str | None, termination_log: str | None,
             output_json: bool, log: RunLog, engine: str = "auto") -> None:
    import json

    from rich.console import Console

    from tfscore.api.manifest import ManifestError
    from tfscore.runtime.errors import TfscoreError

    console = Console(stderr=True)
    term = _termination_log(termination_log)
    try:
        from tfscore.runtime.job import RunOptions, run_job
        from tfscore.runtime.session import read_properties

        props = read_properties(spark_properties)
        result = run_job(job, RunOptions(master=master, properties=props, show_progress=console.is_terminal,
                                              engine=engine))
    except (TfscoreError, ManifestError) as exc:
        _report_failure(term, getattr(exc, "reason", "RunFailed"), str(exc))
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one sentence, never a traceback
        message = _unexpected(exc, log)
        _report_failure(term, "InternalError", message)
        _fail(message, code=1)
    if term:
        term.write_text(json.dumps(result.to_wire()))
    if output_json:
        sys.stdout.write(json.dumps(result.to_wire(), indent=2) + "\n")
    else:
        sys.stdout.write(_summary(result))


@app.command()
def run(
    manifest: str = typer.Argument(None, help="ScoringJob manifest (YAML or JSON), as given to kubectl apply; or a "
                                              "ScoringSchedule with --at."),
    spec: str = typer.Option(None, "--spec", help="Same as MANIFEST (the driver pod's /etc/tfscore/job.json)."),
    at: str = typer.Option(None, "--at", help=AT_HELP + " Runs that run of a ScoringSchedule."),
    master: str = typer.Option(None, "--master", help="Spark master (default: local[*], or the properties' "
                                                      "spark.master)."),
    spark_properties: str = typer.Option(None, "--spark-properties", help="Spark conf file (key=value lines)."),
    termination_log: str = typer.Option(None, "--termination-log", help="Write the result JSON here."),
    output_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    engine: str = ENGINE,
    verbose: bool = VERBOSE,
) -> None:
    """Run a ScoringJob manifest on Spark (local mode by default), or one run of a ScoringSchedule (--at)."""
    from tfscore.api.manifest import ManifestError
    from tfscore.schedulecli import load_job

    path = spec or manifest
    if not path:
        _fail("give a manifest: tfscore run JOB.yaml")
    try:
        job = load_job(path, at)
    except ManifestError as exc:
        _fail(str(exc))
    with RunLog(verbose) as log:
        _execute(job, master, spark_properties, termination_log, output_json, log, engine)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            _fail(f"{flag}: expected NAME=VALUE, got {item!r}")
        out[key] = value
    return out


@app.command()
def score(
    model: str = typer.Option(..., "--model", help="SavedModel URI (or a directory of version directories)."),
    input_: str = typer.Option(..., "--input", help="Input files URI."),
    output: str = typer.Option(..., "--output", help="Output directory URI."),
    version: str = typer.Option("latest", help="Model version."),
    signature: str = typer.Option("serving_default", help="Signature name."),
    input_format: str = typer.Option("parquet", help="parquet, orc, csv or json."),
    output_format: str = typer.Option("parquet", help="parquet, orc, csv or json."),
    mode: str = typer.Option("errorIfExists", help="errorIfExists, overwrite or append."),
    columns: list[str] = typer.Option([], "--columns", help="INPUT=COL or INPUT=COL1,COL2,… (repeatable)."),
    passthrough: list[str] = typer.Option([], "--passthrough", help="Column copied to the output (repeatable)."),
    predictions: list[str] = typer.Option([], "--predictions", help="OUTPUT=COLUMN (repeatable)."),
    batch_size: int = typer.Option(4096, help="Rows per TensorFlow call."),
    where: str = typer.Option(None, help="Spark SQL filter on the input."),
    quarantine: str = typer.Option(None, help="Quarantine invalid rows here instead of failing."),
    master: str = typer.Option(None, help="Spark master (default local[*])."),
    output_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    engine: str = ENGINE,
    verbose: bool = VERBOSE,
) -> None:
    """One-off shorthand for a ScoringJob built from flags."""
    from tfscore.api.manifest import ManifestError, parse

    cols = {k: (v.split(",") if "," in v else v) for k, v in _pairs(columns, "--columns").items()}
    doc = {
        "apiVersion": "tfscore.io/v1alpha1", "kind": "ScoringJob", "metadata": {"name": "score"},
        "spec": {
            "model": {"uri": model, "version": version, "signature": signature},
            "input": {"uri": input_, "format": input_format, "columns": cols, **({"where": where} if where else {})},
            "output": {"uri": output, "format": output_format, "mode": mode, "passthrough": passthrough,
                       "predictions": _pairs(predictions, "--predictions")},
            "batchSize": batch_size,
            **({"onInvalidRow": "quarantine", "quarantineUri": quarantine} if quarantine else {}),
        },
    }
    try:
        job = parse(doc, "tfscore score")
    except ManifestError as exc:
        _fail(str(exc))
    with RunLog(verbose) as log:
        _execute(job, master, None, None, output_json, log, engine)


@app.command()
def demo(
    directory: str = typer.Option(".demo", "--dir", help="Where the demo model, data and output go."),
    rows: int = typer.Option(1_000_000, help="Rows in the generated dataset."),
    master: str = typer.Option(None, help="Spark master (default local[*])."),
    verbose: bool = VERBOSE,
) -> None:
    """Generate a demo risk model and dataset, then score it locally (the embedded default job)."""
    from rich.console import Console

    from tfscore.api.manifest import load

    with RunLog(verbose) as log:
        from tfscore.runtime.demo import describe_scores, prepare

        console = Console(stderr=True)
        with console.status("generating the demo model and dataset …"):
            path = prepare(directory, rows)
        console.print(f"running [bold]{path}[/bold]")
        job = load(path)
        _execute(job, master, None, None, False, log)
        sys.stdout.write(describe_scores(job.spec.output.uri))


if __name__ == "__main__":  # pragma: no cover
    app()
