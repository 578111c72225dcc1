"""What a training logs, for ``init --existing``: by running it once against a scratch MLflow store under
``.loopline/``, or read from a run it made before in the user's own MLflow store (a training of hours is
not run again): the models it logs and the name loopline takes, the experiment, the metrics, whether it
registers a model itself, logs an input example and training rows, and the task its model answers.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loopline.booster_columns import booster_columns
from loopline.config import STATE_DIR, ModelConfig, MonitoringConfig, StoreLocation, redact
from loopline.endpoints.client import example_request
from loopline.errors import ModelFailed, NotFound, Refused, StoreUnavailable, TrainingFailed, UsageError
from loopline.metric_names import measures_clusters
from loopline.mlflow_store import RunInfo, WorkspaceStore
from loopline.model_environment import needless
from loopline.repo_install import requirement_lines, requirement_names
from loopline.run_script import OPENED_LOG

__all__ = ["REFERENCE_ARTIFACT", "DryRun", "dry_run", "earlier_run", "model_task"]

REFERENCE_ARTIFACT = MonitoringConfig().reference_artifact
_IGNORED = re.compile(
    r"^loopline: (mlflow\.\w+\(.*\)|os\.environ\[.*?\] = .*?) ignored", re.M
)  # run_script's


@dataclass(frozen=True)
class DryRun:
    """What the training logged: by one run of it here, or from a run it made before."""

    model_names: list[str]
    chosen: str
    experiment: str | None
    metrics: dict[str, float]
    registered: str | None
    has_example: bool
    requirements: tuple[str, ...]  # the logged model's, as MLflow inferred them
    logged_reference: bool  # the run logged training rows for monitoring (monitoring.reference_artifact)
    ignored: tuple[str, ...]  # the script's own mlflow.set_tracking_uri calls, kept on the workspace
    task: str | None = None  # classification or regression, by what the model answers; None: not told
    from_run: str | None = None  # the earlier run read instead of running the training
    source_commit: str | None = None  # the commit MLflow recorded for that run
    read: tuple[str, ...] = ()  # the files the training read and did not write first (absolute paths)
    # Where several runs logged the chosen model (a search by hand, one run per candidate), or one run
    # logged it as checkpoints (``checkpoints``): the metrics of each.
    rivals: tuple[dict[str, float], ...] = ()
    checkpoints: bool = False
    inputs: tuple[str, ...] = ()  # the columns the model's signature takes, where it names them
    texts: tuple[str, ...] = ()  # a model logged with a list of texts as its example (no names): them
    # The columns of the true values (one; of a model answering several values a row, one for each, in
    # its order), and the table (relative to the repository) that tells them.
    label: tuple[tuple[str, ...], str] | None = None
    # A name for each value the model answers a row, as its signature declares them ("" where it names
    # none: a tensor); none where it declares no answer.
    outputs: tuple[str, ...] = ()
    # Columns of that table the model takes only one-hot encoded by the script (pd.get_dummies' contract
    # for contract_monthly, contract_yearly, ...), each with the model's columns made of it.
    encoded: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # What else the model takes that the table does not hold: columns the script computes before it fits
    # (``sqft_per_room`` of ``sqft`` and ``rooms``).
    computed: tuple[str, ...] = ()
    flavors: tuple[str, ...] = ()  # the logged model's MLflow flavors (sklearn, statsmodels, ...)
    refused: str | None = None  # why the inner loop's check of the model would refuse it; None: it passes
    probabilities: bool = False  # the model answers its input example with a classifier's probabilities
    language_model: bool = False  # a chat model or an agent: its input example is a conversation

    @property
    def forecast(self) -> str | None:
        """The time-series flavor of a model that forecasts a horizon a request names (a value a step, not
        one a row), which outer-loop test cannot measure on held-out rows; None for other models. A model of
        such a flavor whose signature takes the columns of a table the training read, one column more its
        true values (a statsmodels OLS or Logit fitted by a formula), answers a row at a time: no forecast."""
        if self.label is not None:
            return None
        return next((f for f in self.flavors if f in FORECAST_FLAVORS), None)

    @property
    def clustering(self) -> bool:
        """A model fitted without true values: no table the training read has a column the model does not
        take, and it logs measures of clusters (silhouette, davies_bouldin, ...), none of a classifier's
        or a regressor's; outer-loop test has no labels to measure it against."""
        logged = list(self.metrics)
        return (
            self.label is None
            and any(map(measures_clusters, logged))
            and not any(named.search(name) for named in _TASK_METRICS.values() for name in logged)
        )

    @property
    def origin(self) -> str:
        """Where the figures come from, for the comments of the files written from them."""
        return (
            "one dry run of the training" if self.from_run is None else f"the training's run {self.from_run}"
        )


def dry_run(root: Path, command: str, timeout: float, env: dict[str, str]) -> DryRun:
    """Run the entry point once against a scratch MLflow store; what it logged."""
    from loopline.loops import trained as sessions
    from loopline.training import no_sub_command, only_defines, run_training

    with _scratch(root) as scratch:
        store = WorkspaceStore.scratch(scratch)
        store.provision("Default")
        session = uuid.uuid4().hex
        started = int(time.time() * 1000) - 1000
        log = scratch.parent / f"{scratch.name}.log"
        opened = scratch / "opened.log"
        run_training(
            root=root,
            command=command,
            store=store,
            experiment="Default",
            tags={sessions.SESSION: session},
            log_path=log,
            timeout=timeout,
            extra_env={**env, OPENED_LOG: str(opened)},
        )
        runs = sessions.session_runs(store, session, started)
        logged = _logged(store, runs, command, log, scratch, registered="")  # the scratch holds only these
        if logged is None:
            raise TrainingFailed(
                command=command,
                outcome=(not runs and (only_defines(root, command) or no_sub_command(log, root, command)))
                or "ran without logging an MLflow model"
                + (sessions.plain_model_file(store, runs) or " (log one with mlflow.<flavor>.log_model)"),
                log=log,
            )
        found, folder = logged
        said = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        log.unlink(missing_ok=True)  # kept only when the dry run fails, for the error to point at
        read = _read(opened)
        outputs = found.outputs if found.task == "regression" else ()
        label = label_column(root, read, found.inputs, found.texts, outputs)
        return replace(
            found,
            ignored=tuple(dict.fromkeys(_IGNORED.findall(said))),
            read=read,
            label=label,
            encoded=(encoded := _encoded(root / label[1], found.inputs) if label else ()),
            computed=_computed(root / label[1], found.inputs, encoded) if label else (),
            probabilities=found.probabilities or _probabilities_of_rows(root, folder, found, label),
        )


def _probabilities_of_rows(
    root: Path, folder: Path, found: DryRun, label: tuple[tuple[str, ...], str] | None
) -> bool:
    """Whether a classifier without an input example (in ``folder``) answers the first rows of the table
    that tells its label with probabilities (see ``answer_probe``)."""
    if found.task != "classification" or found.has_example or label is None:
        return False
    from loopline.answer_probe import answers_rows_with_probabilities

    table = root / label[1]
    return answers_rows_with_probabilities(folder, _first_part(table) if table.is_dir() else table, label[0])


def _read(opened: Path) -> tuple[str, ...]:
    """The files the training's processes read, less those any of them wrote first (a data step's
    output, which the command makes wherever it runs)."""
    try:
        lines = opened.read_text(encoding="utf-8").splitlines()
    except OSError:  # nothing noted: no process of the training ran through run_script
        return ()
    noted = [line.partition(" ")[::2] for line in lines]
    written = {path for how, path in noted if how == "w"}
    return tuple(dict.fromkeys(path for how, path in noted if how == "r" and path not in written))


def label_column(
    root: Path,
    read: tuple[str, ...],
    inputs: tuple[str, ...],
    texts: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
) -> tuple[tuple[str, ...], str] | None:
    """The columns of the true values, and a table of the repository that tells them: in the tables the
    training read (CSV, TSV, Parquet; a folder of them by its first) that hold every column the model
    takes (for a model without names logged with a list of ``texts`` as its example, the one column holding
    them all), the one column more, where they agree on it (an index or an identifier is not one); of a
    regressor answering several values a row (``outputs``, their names), as many columns more, in the order
    the outputs name them, else the table's. None where no table tells them."""
    if not inputs and not texts:
        return None
    told: dict[tuple[str, ...], str] = {}
    for name in read:
        path = Path(name)
        if not path.is_relative_to(root) or not path.exists():
            continue
        table = _first_part(path) if path.is_dir() else path
        columns = _columns(table)
        taken = _taken(columns, inputs) if inputs else _holding(table, columns, texts)
        rest = [c for c in columns if c not in taken and not _NOT_LABELS.search(c)]
        if taken and len(rest) > 1 and len(rest) != len(outputs):
            rest = _possible_labels(table, rest)
        if taken and (len(rest) == 1 or 1 < len(rest) == len(outputs)):
            ordered = sorted(rest, key=list(outputs).index) if set(rest) == set(outputs) else rest
            told.setdefault(tuple(ordered), path.relative_to(root).as_posix())
    return next(iter(told.items())) if len(told) == 1 else None


def _made_of(columns: list[str], name: str) -> str | None:
    """The column of ``columns`` that ``name`` is one-hot encoded from (``contract_monthly`` of
    ``contract``, as pd.get_dummies and scikit-learn's get_feature_names_out name them); None where none."""
    made = [c for c in columns if name.startswith((f"{c}_", f"{c}.", f"{c}=")) and len(name) > len(c) + 1]
    return max(made, key=len, default=None)


def _taken(columns: list[str], inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of a table the model's ``inputs`` are made of: each one itself, or the column it is
    one-hot encoded from; none where an input is neither (the model was not fitted on this table)."""
    taken = []
    for name in inputs:
        column = name if name in columns else _made_of(columns, name)
        if column is None:
            return ()
        taken.append(column)
    return tuple(dict.fromkeys(taken))


def _encoded(table: Path, inputs: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The columns of ``table`` that the model's ``inputs`` take only one-hot encoded, with those inputs:
    an input named after a column and one of its values (``contract_monthly``, where ``contract`` holds
    ``monthly``), not one the script computed from it (``sqft_per_room`` of ``sqft``)."""
    columns = _columns(table)
    made: dict[str, list[str]] = {}
    for name in inputs:
        if name not in columns and (column := _made_of(columns, name)) is not None:
            made.setdefault(column, []).append(name)
    if not made:
        return ()
    from loopline.storage.datastores import first_rows

    frame = first_rows(table, 100_000)  # as text, as the encoding names the values
    if frame is None:  # the names alone then
        return tuple((column, tuple(names)) for column, names in made.items())
    encoded = []
    for column, names in made.items():
        values = set(frame[column].dropna().astype(str)) if column in frame.columns else set()
        kept = tuple(name for name in names if name[len(column) + 1 :] in values)
        if kept:
            encoded.append((column, kept))
    return tuple(encoded)


def _computed(
    table: Path, inputs: tuple[str, ...], encoded: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[str, ...]:
    """The model's ``inputs`` that ``table`` neither holds nor one-hot encodes (``encoded``)."""
    columns = set(_columns(table))
    dummies = {name for _, names in encoded for name in names}
    return tuple(name for name in inputs if name not in columns and name not in dummies)


def _holding(table: Path, columns: list[str], texts: tuple[str, ...]) -> tuple[str, ...]:
    """The one column of ``table`` (of its first 100,000 rows) that holds every one of ``texts``; none
    where no column or several do."""
    if not columns or not texts:
        return ()
    from loopline.storage.datastores import first_rows

    frame = first_rows(table, 100_000)  # as text
    if frame is None:
        return ()
    wanted = set(texts)
    holding = [str(c) for c in frame.columns if wanted <= set(frame[c].dropna().astype(str))]
    return (holding[0],) if len(holding) == 1 else ()


def _example_texts(folder: Path) -> tuple[str, ...]:
    """The texts of a model logged with a list of texts as its example (from which MLflow infers no
    signature); none for any other example."""
    try:
        example = json.loads((folder / "input_example.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    if isinstance(example, list) and example and all(isinstance(value, str) for value in example):
        return tuple(example)
    return ()


# Columns that are no label: an index pandas wrote unnamed, a row's identifier (X_train.csv's `id`, where
# the labels are in a file of their own).
_NOT_LABELS = re.compile(
    r"^(Unnamed: \d+|__index_level_\d+__)$|(^|[_\W])(id|uuid|key|index)$|(?-i:[a-z](Id|ID))$", re.I
)


def _first_part(folder: Path) -> Path:
    """The first file of a folder of tables (a dataset Spark or pyarrow wrote), less markers such as
    ``_SUCCESS`` and hidden files; the folder itself where it holds none."""
    parts = (
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts)
    )
    return next(parts, folder)


def _possible_labels(table: Path, columns: list[str]) -> list[str]:
    """Those of ``columns`` of ``table`` (by its first 2,000 rows) that can hold a model's true values: not
    empty, not dates or times, and not text that differs from row to row (names, ticket numbers, free
    text: of 50 values or more, a distinct one for every 3 or fewer), as the columns a training drops
    before it fits often are. All of them where the table cannot be read."""
    import pandas as pd

    from loopline.storage.datastores import first_rows

    frame = first_rows(table, 2000)  # as text
    if frame is None:
        return columns
    kept = []
    for column in columns:
        if column not in frame.columns:  # a name the header read gives otherwise: nothing to tell by
            kept.append(column)
            continue
        text = frame[column].dropna().astype(str)
        if text.empty:
            continue
        if pd.to_numeric(text, errors="coerce").notna().all():
            kept.append(column)
            continue
        distinct = len(text) >= 50 and text.nunique() >= 0.3 * len(text)  # a class has 3 rows or fewer
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' note on inferring each value's format
            dates = pd.to_datetime(text, errors="coerce", format="mixed").notna().mean() > 0.9
        if not (distinct or dates):
            kept.append(column)
    return kept


def _columns(path: Path) -> list[str]:
    """A table's column names, from its header alone; none where it is not a table pandas reads."""
    from loopline.storage.datastores import csv_columns, is_parquet

    try:
        if is_parquet(path.name):
            import pyarrow.parquet as pq

            return [str(name) for name in pq.read_schema(path).names]
        if path.name.lower().removesuffix(".gz").endswith((".csv", ".tsv")):
            return csv_columns(path, path.name)
    except Exception:  # a file that only looks like a table: it tells nothing
        return []
    return []


def earlier_run(root: Path, run_id: str, tracking_uri: str | None) -> DryRun:
    """What a run the training made before (by hand, in the store it logs to) logged, with the runs nested
    in it: the training is not run again."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or _local_store(root)
    store = WorkspaceStore(StoreLocation("your MLflow store", uri, uri, None, ""))
    run_id = _newest(store, uri) if run_id == "latest" else run_id.removeprefix("runs:/").split("/", 1)[0]
    try:
        run = store.run(run_id)
    except StoreUnavailable:
        raise
    except Exception as exc:  # MLflow's RESOURCE_DOES_NOT_EXIST, or an id it cannot read
        raise NotFound(
            f"no run {run_id} in {redact(uri)} ({type(exc).__name__}): give the run's id as MLflow shows "
            "it, and --tracking-uri where the training logged it"
        ) from None
    if run.status != "FINISHED":
        raise Refused(f"run {run_id} ended {run.status}: give a run that finished")
    runs = [run, *store.search_all_runs(f"tags.`mlflow.parentRunId` = '{run_id}'")]
    with _scratch(root) as scratch:
        logged = _logged(store, runs, f"run {run_id}", None, scratch, registered=f"run_id = '{run_id}'")
    if logged is None:
        raise Refused(f"run {run_id} logged no MLflow model: give the run that logged the model")
    return replace(logged[0], from_run=run_id, source_commit=run.tags.get("mlflow.source.git.commit"))


@contextmanager
def _scratch(root: Path) -> Iterator[Path]:
    """A folder of init's own under ``.loopline/``, removed afterwards."""
    scratch = root / STATE_DIR / "scratch" / f"init-{uuid.uuid4().hex[:8]}"
    scratch.mkdir(parents=True)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _newest(store: WorkspaceStore, uri: str) -> str:
    """The newest finished run of the store that logged a model itself (not one nested in another)."""
    for run in store.search_all_runs("attributes.status = 'FINISHED'", limit=200):
        if run.parent_id is None and store.logged_models(run):
            return run.run_id
    raise NotFound(f"no finished run in {redact(uri)} logged an MLflow model: run the training, then init")


def _local_store(root: Path) -> str:
    """MLflow's default store where the training ran by hand, in the repository's folder."""
    if (root / "mlflow.db").is_file():
        return f"sqlite:///{root / 'mlflow.db'}"
    if (root / "mlruns").is_dir():
        return (root / "mlruns").as_uri()
    raise UsageError(
        f"{root} has no mlflow.db or mlruns/ and MLFLOW_TRACKING_URI is not set: name the store the "
        "run is in with --tracking-uri"
    )


def _logged(
    store: WorkspaceStore, runs: list[RunInfo], command: str, log: Path | None, scratch: Path, registered: str
) -> tuple[DryRun, Path] | None:
    """What ``runs`` logged: their models (the one loopline would pick), experiment, metrics and the
    registered model of those MLflow's filter ``registered`` finds, and the folder of the one picked (in
    ``scratch`` or the store); None where they logged no model."""
    from loopline.loops import trained as sessions

    logged = [model for run in runs for model in store.logged_models(run)]
    if not logged:
        return None
    names = sorted({model.name for model in logged})
    versions = store.client.search_model_versions(registered)
    # The one the script registers itself, where it does (not the one autolog logged beside it); else
    # MLflow's usual name.
    own = {str(getattr(v, "model_id", None) or str(v.source).removeprefix("models:/")) for v in versions}
    registers = sorted({model.name for model in logged if model.model_id in own})
    stem = None if registers or "model" in names else sessions.checkpoint_stem(logged)
    chosen = (
        registers[-1] if registers else "model" if "model" in names else f"{stem}*" if stem else names[-1]
    )
    wanted = ModelConfig(name="x", artifact_path=chosen, select="last")
    picked = sessions.pick_model(store, runs, wanted, command, log)
    by_id = {run.run_id: run for run in runs}
    if stem:  # checkpoints of one run: each with the run's metrics under its own
        rivals = [_finite({**by_id[m.run_id].metrics, **m.metrics}) for m in logged if m.run_id in by_id]
    else:
        rivals = [_finite(by_id[r].metrics) for r in sessions.rival_runs(logged, runs, wanted)]
    experiments = {store.experiment_name(run.experiment_id) for run in runs}
    folder = Path(store.local_copy(picked.model_uri, scratch / "copy"))
    found = DryRun(
        model_names=names,
        chosen=chosen,
        experiment=next(iter(experiments)) if len(experiments) == 1 else None,
        metrics=_finite(picked.metrics),
        registered=str(versions[0].name) if versions else None,
        has_example=(folder / "input_example.json").is_file() or any(folder.glob("input_example*")),
        requirements=_used_requirements(folder),
        ignored=(),
        logged_reference=any(
            entry.path == REFERENCE_ARTIFACT for entry in store.client.list_artifacts(picked.run_id)
        ),
        task=model_task(folder, picked.metrics),
        inputs=_input_names(folder),
        outputs=_output_names(folder),
        texts=_example_texts(folder),
        flavors=_flavors(folder),
        language_model=(example := example_request(folder)) is not None and example.llm,
        rivals=tuple(rivals) if len(rivals) > 1 else (),
        checkpoints=bool(stem),
        **_checked(folder),
    )
    return found, folder


def _used_requirements(folder: Path) -> tuple[str, ...]:
    """The model's requirements as MLflow inferred them, less packages it lists that the model does not
    use (an array library that was only installed where it was trained: see ``needless``)."""
    listed = requirement_lines(folder / "requirements.txt")
    unused = needless(folder, sorted(requirement_names(listed)))
    return tuple(line for line in listed if not requirement_names([line]) & unused)


def _checked(folder: Path) -> dict[str, Any]:
    """The inner loop's check of the model in ``folder`` (the one it makes before registering: load it in
    a sandbox, answer its input example): why it would refuse it (``refused``), else whether the model
    answered with a classifier's probabilities (``probabilities``)."""
    from loopline.sandbox import check_model
    from loopline.training import check_advice

    try:
        found = check_model(folder, nulls=False)
    except ModelFailed as exc:
        return {"refused": check_advice(exc.message)}
    return {"probabilities": bool(found.get("probabilities"))}


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


_CLASSIFIED = re.compile(r"(accuracy|acc|auc|f1|precision|recall|log_?loss)", re.I)
_REGRESSED = re.compile(r"(r2|rmse|mse|mae|mape|squared_error|absolute_error)", re.I)
_TASK_METRICS = {"classification": _CLASSIFIED, "regression": _REGRESSED}


def model_task(folder: Path, metrics: dict[str, float]) -> str | None:
    """``classification`` or ``regression``, by the answer the model's signature declares: labels (text,
    integers, booleans) or a probability per class (several numbers a row, unless the metrics logged are
    only a regressor's: then a value for each of several targets), or one number a row (a classifier
    fitted on labels 0.0 and 1.0 answers one too: its metrics, all of a classifier's, tell it). A model
    without a signature (one logged with a list of texts as its example) is told by its metrics alone,
    where they are all of one task's kind; None where neither tells."""
    declared = _declared_task(folder)
    told = [task for task, named in _TASK_METRICS.items() if any(map(named.search, metrics))]
    if declared is None:
        return told[0] if len(told) == 1 else None
    if declared == "rows":  # several numbers a row: a probability for each class, or several outputs
        return "regression" if told == ["regression"] else "classification"
    if (
        declared == "regression"
        and any(map(_CLASSIFIED.search, metrics))
        and not any(map(_REGRESSED.search, metrics))
    ):
        return "classification"
    return declared


# MLflow's flavors of time-series models: a request names a horizon, the answer is a value for each step.
FORECAST_FLAVORS = ("statsmodels", "prophet", "pmdarima", "diviner")


def _flavors(folder: Path) -> tuple[str, ...]:
    """The MLflow flavors the model was logged with; none where its MLmodel cannot be read."""
    from mlflow.models import Model

    try:
        return tuple(Model.load(str(folder / "MLmodel")).flavors)
    except Exception:  # an MLmodel MLflow cannot read: no flavor to tell anything by
        return ()


def _input_names(folder: Path) -> tuple[str, ...]:
    """The columns the model's signature takes, by name; without a signature, those of its input example
    (MLflow infers none from a column of pandas categories, which a LightGBM booster is often fitted on),
    else those its booster's file names (XGBoost's and LightGBM's autolog logs neither by default); none
    where none names columns."""
    from mlflow.models import Model

    try:
        logged = Model.load(str(folder / "MLmodel"))
    except Exception:  # an MLmodel MLflow cannot read
        return ()
    try:
        names = logged.signature.inputs.input_names() if logged.signature is not None else None
    except Exception:  # a signature MLflow cannot read
        return ()
    if names is None:
        names = _example_columns(
            folder / str((logged.saved_input_example_info or {}).get("artifact_path", ""))
        ) or booster_columns(folder, logged.flavors)
    return tuple(str(name) for name in names if isinstance(name, str))


def _example_columns(path: Path) -> list[object]:
    """The columns of a table saved as an input example (MLflow's split orient); none for another one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    columns = document.get("columns") if isinstance(document, dict) else None
    return columns if isinstance(columns, list) else []


def _declared_task(folder: Path) -> str | None:
    """What the model's signature says it answers: ``classification`` (labels), ``regression`` (one number
    a row), ``rows`` (several numbers a row); None where it says nothing that tells."""
    from mlflow.models import Model

    try:
        outputs = Model.load(str(folder / "MLmodel")).signature.outputs
        specs = list(outputs.inputs)
    except Exception:  # no signature, or one MLflow cannot read: the validation section keeps its defaults
        return None
    if len(specs) != 1:
        return None
    kind = str(getattr(specs[0].type, "name", specs[0].type)).lower()
    shape = getattr(specs[0], "shape", None) or ()
    if kind.startswith(("str", "int", "long", "bool", "object")):
        return "classification"
    if len(shape) > 1:
        return "rows"
    return "regression" if kind.startswith(("double", "float")) else None


def _output_names(folder: Path) -> tuple[str, ...]:
    """A name for each value the model's signature says it answers a row: its output columns' names, or
    one empty name for each value of a tensor of rows; none where it declares no answer, or one MLflow
    cannot read."""
    from mlflow.models import Model

    try:
        specs = list(Model.load(str(folder / "MLmodel")).signature.outputs.inputs)
    except Exception:  # no signature, or one MLflow cannot read
        return ()
    shape = tuple(getattr(specs[0], "shape", None) or ()) if len(specs) == 1 else ()
    if len(shape) == 2 and shape[1] > 0:
        return ("",) * int(shape[1])
    return tuple(str(getattr(spec, "name", None) or "") for spec in specs)
