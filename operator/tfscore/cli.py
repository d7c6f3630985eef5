"""The `tfscore` command line: run · score · doctor · crd · operator · demo.

Heavy imports (Spark, TensorFlow, kopf) happen inside the commands, so `tfscore crd` works in the operator image and
`tfscore run` works without Kubernetes libraries.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Kubernetes-native batch inference: TensorFlow SavedModels scored on Spark.")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def crd() -> None:
    """Print the ScoringJob CustomResourceDefinition (generated from the pydantic API models)."""
    from tfscore.api.crd import render_yaml

    sys.stdout.write(render_yaml())


@app.command("operator")
def operator_(
    namespace: list[str] = typer.Option([], "--namespace", "-n", help="Namespaces to watch (default: all)."),
    liveness: str = typer.Option("http://0.0.0.0:8080/healthz", help="Liveness endpoint."),
    metrics_port: int = typer.Option(9090, help="Prometheus metrics port (0: off)."),
    standalone: bool = typer.Option(False, help="No peering (single replica)."),
) -> None:
    """Run the kopf operator (the control plane)."""
    from tfscore.operator.main import run_operator

    run_operator(namespaces=namespace, liveness=liveness, metrics_port=metrics_port, standalone=standalone)


if __name__ == "__main__":  # pragma: no cover
    app()
