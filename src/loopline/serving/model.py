"""Loading a deployed model from its content-addressed folder, with a fast path for scikit-learn.

loopline checks every request against the model's column signature itself (``schema.py``), and then calls
the model's own predict without MLflow checking the input again: MLflow's check refuses what loopline
accepts on purpose, such as a null in an optional integer column, which the model was trained with.
Signatures MLflow must check itself (tensors, type hints) keep MLflow's predict.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import pickle
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from loopline.domain import llm_request
from loopline.errors import Refused
from loopline.model_environment import Difference, differences, said
from loopline.serving.categories import as_trained_categories, categorical_booster, trained_categories
from loopline.serving.compiled import OWN, compile_or_say_why
from loopline.serving.encoders import Guarded, formula_categories, guarded_categories
from loopline.serving.llm import llm_input, no_traces
from loopline.serving.nulls import texts_missing_as_trained
from loopline.serving.schema import FRACTIONAL, TEXT, InputSchema, Table, plain_columns, to_model_input

__all__ = ["LoadedModel", "check_model", "load_model"]


@dataclass
class LoadedModel:
    """A model ready to predict, with the schema its requests are checked against."""

    digest: str
    folder: Path
    schema: InputSchema
    flavor: str
    predict: Callable[[Any], Any]
    batchable: bool
    example: Table | None
    compiled: bool = False  # predicting with numpy or treelite (see serving/compiled.py)
    path: str = OWN  # what answers (and why not a compiled form), for /readyz
    off_loop: Callable[[int], bool] | None = None  # which batch sizes to predict off the loop (batching.py)
    predict_with_params: Callable[[Any, dict[str, Any]], Any] | None = None  # None: params are ignored
    params_schema: Any = None  # MLflow's ParamSchema, which a request's params are checked against first
    environment: tuple[Difference, ...] = ()  # the model's requirements that the packages here do not meet
    flavors: frozenset[str] = frozenset()  # the MLmodel's flavors
    # What its strict encoders (or a statsmodels formula) know: serving/encoders.py.
    categories: Guarded = field(default_factory=Guarded)
    example_answer: Any = None  # its answer to its input example, once ``check_model`` has had it
    # A Python model's predict for a language model's request (serving/llm.py), and its params' names
    predict_document: Callable[[dict[str, Any], dict[str, Any] | None], Any] | None = None
    document_params: frozenset[str] = frozenset()

    @property
    def example_data(self) -> Any:
        """The input example as the model takes it, or None (for telling what made the model fail)."""
        try:
            return self.example_input()
        except Exception:  # an example that does not fit the signature helps nobody
            return None

    def example_input(self) -> Any:
        """The model's input example (or a row of zeros) as the model takes it, or None."""
        table = self.example
        if table is None and self.schema.fast:
            table = placeholder_row(self.schema)
        if table is None or table.document is not None:
            return None
        data, _ = to_model_input(self.schema, table, matrix=self.batchable)
        return data

    def answer_example(self) -> Any:
        """Predict the model's input example (or a row of zeros): proof that it loaded and answers."""
        if self.example is not None and self.example.document is not None:
            return self.answer_document(self.example.document)
        data = self.example_input()
        return None if data is None else self.predict(data)

    def answer_document(self, document: dict[str, Any]) -> Any:
        """The model's answer to a language model's request (serving/llm.py), with MLflow's tracing off in
        this process (a server's, a sandbox's) from then on."""
        no_traces()
        takes = self.predict_document is not None
        data, params = llm_input(self.schema, self.document_params, document, takes_documents=takes)
        assert self.predict_document is not None  # llm_input refuses a model without one
        return self.predict_document(data, params)

    def null_probes(self) -> list[tuple[str, Any]]:
        """For each optional column, the input example's first row with that column null."""
        table = self.example
        columns = self.schema.columns or ()
        if table is None or not table.rows or table.columns is None:
            return []
        probes = []
        for column in (c for c in columns if not c.required and c.name in table.columns):
            at = table.columns.index(column.name)
            row = list(table.rows[0])
            row[at] = None
            data, _ = to_model_input(self.schema, replace(table, rows=[row]), matrix=self.batchable)
            probes.append((column.name, data))
        return probes


def _example(folder: Path, info: dict[str, Any] | None) -> Table | None:
    path = folder / str((info or {}).get("artifact_path", "input_example.json"))
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if llm_request(document):  # an agent's, a chat's
        return Table(None, [], document=document)
    if isinstance(document, dict) and "data" in document:
        return Table(document.get("columns"), document["data"])
    if isinstance(document, dict) and "dataframe_split" in document:
        split = document["dataframe_split"]
        return Table(split.get("columns"), split.get("data", []))
    if isinstance(document, list) and document and all(isinstance(row, list) for row in document):
        return Table(None, document)  # an array's rows (a model fitted on arrays), taken by position
    if isinstance(document, list) and document and not any(isinstance(v, list | dict) for v in document):
        return Table(None, [[value] for value in document], scalars=True)  # a list of texts, one a row
    return None


def load_model(folder: Path, digest: str) -> LoadedModel:
    """Load the MLflow model in ``folder`` (already verified against ``digest``), with how its requirements
    differ from the packages installed here.

    scikit-learn warns once per estimator it unpickles from another version of its own (a pipeline: a few
    lines each); where the model's requirements name that version, the one line that says so is the
    caller's, and those warnings are left out. Every other warning of the load is let through."""
    # The warnings module's state is the process's: two loads recording at once in two threads could each
    # put back what the other set, and leave every later warning recorded into a list nobody reads.
    with _RECORDING, warnings.catch_warnings(record=True) as caught:
        model = _load(folder, digest)
    if model.flavor == "sklearn":
        _no_feature_names_warning()  # again: the block above put the filters back as they were
    model.environment = differences(folder)
    said_already = any(difference.name == "scikit-learn" for difference in model.environment)
    for found in caught:  # through the filters in force now, each shown once as before
        if not (said_already and type(found.message).__name__ == "InconsistentVersionWarning"):
            warnings.warn_explicit(
                found.message, found.category, found.filename, found.lineno, registry=_SHOWN
            )
    return model


def _no_feature_names_warning() -> None:
    """Matrices carry no feature names; the model was fitted on the same columns in the same order."""
    warnings.filterwarnings("ignore", message="X does not have valid feature names")


def _load(folder: Path, digest: str) -> LoadedModel:
    if "mlflow" not in sys.modules and any(folder.glob("*.skops")):
        # skops lists its trusted types at import, searching every loaded module for each ufunc: with
        # MLflow's thousands loaded first, a server's first scikit-learn model took 0.5 s longer to load.
        with contextlib.suppress(ImportError):  # without skops, MLflow's loader says what is missing
            import skops.io  # noqa: F401
    plain = _plain_sklearn(folder)
    if plain is not None:
        schema, estimator, document = plain
        return _sklearn_model(folder, digest, schema, estimator, document)
    from loopline.mlflow_output import quiet_mlflow

    quiet_mlflow()
    from mlflow.models import Model

    metadata = Model.load(str(folder / "MLmodel"))
    schema = InputSchema.from_signature(metadata.signature)
    flavors = metadata.flavors
    if "sklearn" in flavors and schema.fast:
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(str(folder))
        return _sklearn_model(folder, digest, schema, estimator, metadata.to_dict())
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(folder))
    texts = [column.name for column in schema.columns or () if column.type == "string"]
    own, own_with_params = _predictors(pyfunc, schema)
    if _TREE_FLAVORS & set(flavors):
        own, own_with_params = _as_categories(pyfunc, own, own_with_params)
    predict = texts_missing_as_trained(_finiteness_checked(own), texts)
    with_params = own_with_params and texts_missing_as_trained(_finiteness_checked(own_with_params), texts)
    example = _example(folder, metadata.saved_input_example_info)
    if example is not None and example.scalars and schema.columns is None and schema.tensor is None:
        schema = replace(schema, values=True)  # logged with a list of texts: it takes one value a row
    model = LoadedModel(
        digest,
        folder,
        schema,
        "python_function",
        predict,
        False,
        example,
        predict_with_params=with_params,
        params_schema=pyfunc.metadata.get_params_schema() if with_params is not None else None,
        flavors=frozenset(flavors),
        categories=_strict_categories(pyfunc, flavors),
        predict_document=lambda data, params: pyfunc.predict(data, params=params),
        document_params=_param_names(pyfunc.metadata),
    )
    _take_missing_values(model)
    if schema.fast and with_params is None and _TREE_FLAVORS & set(flavors):
        _compile_booster(model, pyfunc)
    return model


def _param_names(metadata: Any) -> frozenset[str]:
    """The names of the params a model declares (a language model's request's fields that are params)."""
    schema = metadata.get_params_schema() if hasattr(metadata, "get_params_schema") else None
    return frozenset(param.name for param in schema.params) if schema is not None else frozenset()


def _strict_categories(pyfunc: Any, flavors: Any) -> Guarded:
    """What the strict encoders of a scikit-learn model, or the formula of a statsmodels one, served
    through its pyfunc know."""
    read = (
        guarded_categories
        if "sklearn" in flavors
        else formula_categories
        if "statsmodels" in flavors
        else None
    )
    try:
        return read(pyfunc.get_raw_model()) if read is not None else Guarded()
    except Exception:  # no raw model to ask: nothing is checked
        return Guarded()


def _as_categories(
    pyfunc: Any, own: Callable[[Any], Any], with_params: Callable[[Any, dict[str, Any]], Any] | None
) -> tuple[Callable[[Any], Any], Callable[[Any, dict[str, Any]], Any] | None]:
    """The predictors of a LightGBM or XGBoost model fitted on pandas categories, handed those columns
    so."""
    try:
        native = pyfunc.get_raw_model()
        categories = trained_categories(native)
    except Exception:  # no raw model to ask: it is served as it is
        return own, with_params
    if categories and (booster := categorical_booster(native)) is not None:
        own = booster  # an XGBoost Booster takes no params
    return as_trained_categories(own, categories), with_params and as_trained_categories(
        with_params, categories
    )


def _sklearn_model(
    folder: Path, digest: str, schema: InputSchema, estimator: Any, document: dict[str, Any]
) -> LoadedModel:
    """A scikit-learn model with a numeric signature: the estimator's own predict on float matrices."""
    pyfunc_conf = (document.get("flavors") or {}).get("python_function") or {}
    predict_fn = str(pyfunc_conf.get("predict_fn", "predict"))
    _no_feature_names_warning()
    model = LoadedModel(
        digest,
        folder,
        schema,
        "sklearn",
        getattr(estimator, predict_fn),
        True,
        _example(folder, document.get("saved_input_example_info")),
        flavors=frozenset(document.get("flavors") or ()),
        categories=guarded_categories(estimator),
    )
    if _reads_columns_by_name(model):  # every request, and the example, as the table MLflow would make
        model.batchable = False
        model.path = f"{OWN} (on tables: it reads its columns by name, as MLflow hands them to it)"
    _take_missing_values(model)
    example = model.example_input()
    if predict_fn == "predict" and isinstance(example, np.ndarray):
        compiled, why = compile_or_say_why(estimator, example)
        if compiled is not None:
            model.predict, model.compiled, model.path = compiled, True, compiled.path
            model.off_loop = compiled.off_loop
        else:
            model.path = why
    return model


def _reads_columns_by_name(model: LoadedModel) -> bool:
    """Whether the estimator answers its input example only as the table MLflow hands it, not as a float
    matrix, as nearly every one takes: a pipeline whose own function indexes a DataFrame. Where neither
    answers, matrices stay, and the check that follows says why."""

    def answers(data: Any) -> bool:
        try:
            model.predict(data)
        except Exception:
            return False
        return True

    matrix = model.example_input()
    if not isinstance(matrix, np.ndarray) or answers(matrix):
        return False
    return answers(replace(model, batchable=False).example_input())


_FORMATS = frozenset({"skops", "pickle", "cloudpickle"})


def _plain_sklearn(folder: Path) -> tuple[InputSchema, Any, dict[str, Any]] | None:
    """A scikit-learn model with a numeric column signature, read as ``mlflow.sklearn.load_model`` reads
    it (its ``MLmodel``, then the file in its serialization format) but without importing MLflow, which
    takes over a second in each process that loads a model (a server, the sandbox that checks a new
    version). None when MLflow's own loader is needed: code paths, another format or signature, or
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` set to refuse (MLflow's loader then says so)."""
    found = _sklearn_flavor(folder)
    allowed = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true").strip().lower() in {"true", "1"}
    if found is None or not allowed:
        return None
    schema, flavor, document = found
    kind, trusted = flavor.get("serialization_format", "pickle"), flavor.get("skops_trusted_types")
    path = folder / str(flavor.get("pickled_model", ""))
    if kind not in _FORMATS or not path.is_file() or path.parent != folder:
        return None
    if kind == "skops":
        import skops.io

        return schema, skops.io.load(path, trusted=trusted), document
    with path.open("rb") as opened:
        if kind == "pickle":
            return schema, pickle.load(opened), document
        import cloudpickle

        return schema, cloudpickle.load(opened), document


def _sklearn_flavor(folder: Path) -> tuple[InputSchema, dict[str, Any], dict[str, Any]] | None:
    """The numeric column signature, the ``sklearn`` flavor (without code paths) and the whole of the
    model's ``MLmodel``; None for any other model."""
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load((folder / "MLmodel").read_text(encoding="utf-8"), Loader=loader)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    flavors = document.get("flavors") if isinstance(document, dict) else None
    flavor = flavors.get("sklearn") if isinstance(flavors, dict) else None
    signature = document.get("signature") if isinstance(flavor, dict) and not flavor.get("code") else None
    schema = plain_columns(signature.get("inputs")) if isinstance(signature, dict) else None
    if schema is None or not schema.fast or not isinstance(flavor, dict):
        return None
    return schema, flavor, document


_TREE_FLAVORS = frozenset({"xgboost", "lightgbm"})
_RECORDING = threading.Lock()
_SHOWN: dict[Any, Any] = {}  # the warnings a load let through, as the warnings module's registry of them


def _compile_booster(model: LoadedModel, pyfunc: Any) -> None:
    """Serve an XGBoost or LightGBM model from float matrices through treelite, where that answers as the
    model's own pyfunc predict does (on the same rows as a DataFrame); else leave it as it is."""
    schema, own_frame = model.schema, model.predict
    try:
        native = pyfunc.get_raw_model()
        table = model.example or placeholder_row(schema)
        if table is None:
            return
        example, _ = to_model_input(schema, table, matrix=True)
    except Exception:  # no raw model, or an example that does not fit: its own predict serves
        return

    doubles = all(column.type == "double" for column in schema.columns or ())

    def own(x: np.ndarray) -> np.ndarray:
        if doubles:  # the DataFrame the checked request would have made, without the per-value pass
            import pandas as pd

            return np.asarray(own_frame(pd.DataFrame(np.asarray(x, dtype=np.float64), columns=schema.names)))
        frame, _ = to_model_input(schema, Table(schema.names, x.tolist()), matrix=False)
        return np.asarray(own_frame(frame))

    compiled, why = compile_or_say_why(native, example, own)
    if compiled is None:
        model.path = why
        return
    model.predict, model.batchable, model.compiled = compiled, True, True
    model.path, model.off_loop = compiled.path, compiled.off_loop


def _take_missing_values(model: LoadedModel) -> None:
    """Let a null through to a model that takes it as a missing value, as MLflow does: in a float column
    (as NaN) to XGBoost, LightGBM, scikit-learn's forests and histogram boosting, a pipeline that imputes
    first; in a text column (as None) to a pipeline whose encoder was fitted on rows with a category
    missing. Whether it does is asked of the model itself: its input example (or, logged without one, a
    row of placeholder values it answers; see ``_probe_base``) with every such column null must be
    answered, with no NaN in the answer. Any other model's required
    columns refuse a null by name rather than hand it to a model that would fail on it, or answer from it."""
    base = functools.cache(lambda: _probe_base(model))  # one row for both probes, made when one is asked
    _take_missing(model, FRACTIONAL, base)
    _take_missing(model, TEXT, base)


def _take_missing(model: LoadedModel, kinds: frozenset[str], base: Callable[[], Any]) -> None:
    schema = model.schema
    positions = [i for i, c in enumerate(schema.columns or ()) if c.type in kinds and not c.nullable]
    if not positions:
        return
    try:
        data = base()
        if data is None:
            return
        if isinstance(data, np.ndarray):
            if kinds != FRACTIONAL:
                return  # a matrix of numbers holds no text
            probe: Any = np.array(data[:1], dtype=np.float64)
            probe[:, positions] = np.nan
        else:
            import pandas as pd

            probe = data.head(1).copy()
            names = [schema.names[i] for i in positions]
            if kinds == FRACTIONAL:  # as a request's null reaches the model: NaN in its float column
                probe[names] = np.nan
            else:  # and None in a text one
                for name in names:
                    probe[name] = pd.Series([None] * len(probe), index=probe.index, dtype=object)
        answers = _finiteness_checked(model.predict)(probe)
    except Exception:  # the model refuses the nulls, or has no example that fits: they are refused
        return
    if _finite(answers):
        model.schema = schema.taking_missing(kinds)


# What a missing-value probe puts in a column of each type when the model has no input example.
_PLACEHOLDERS: dict[str, Any] = {
    **dict.fromkeys(("double", "float"), 0.0),
    **dict.fromkeys(("long", "integer"), 0),
    "boolean": False,
    "string": "",
    "datetime": "2000-01-01T00:00:00",
}


def placeholder_row(schema: InputSchema) -> Table | None:
    """One row of placeholder values of the signature's types (0, false, empty text), for a model logged
    without an input example; None where a column is of another type, or the signature names none."""
    columns = schema.columns
    if columns is None or any(c.type not in _PLACEHOLDERS for c in columns):
        return None
    return Table(schema.names, [[_PLACEHOLDERS[c.type] for c in columns]])


def _probe_base(model: LoadedModel) -> Any:
    """The row the missing-value probes start from, as the model takes it: its input example, else (a
    model logged without one, as MLflow's autolog logs it) one row of placeholder values of its
    signature's types (0, false, empty text) that it answers with finite values; None where neither is."""
    data = model.example_input()
    if data is not None or (row := placeholder_row(model.schema)) is None:
        return data
    data, _ = to_model_input(model.schema, row, matrix=model.batchable)
    return data if _finite(_finiteness_checked(model.predict)(data)) else None


def _finite(answers: Any) -> bool:
    """Whether a model's answers hold no NaN or infinity (answers that are not numbers hold none)."""
    import pandas as pd

    if isinstance(answers, pd.DataFrame | pd.Series):
        answers = answers.to_frame() if isinstance(answers, pd.Series) else answers
        answers = answers.select_dtypes("number").to_numpy(dtype=np.float64)
    try:
        values = np.asarray(answers, dtype=np.float64)
    except (TypeError, ValueError):
        return True
    return bool(np.isfinite(values).all())


def _finiteness_checked(predict: Any) -> Any:
    """``predict`` with scikit-learn's check for NaN and infinity on. A serving worker turns the check off
    for the matrices it checked itself; a table reaches a Python model as it came, nulls as NaN where a
    column is a number, and a model that takes no NaN must refuse it, not answer from it."""
    sklearn = sys.modules.get("sklearn")  # loaded by the model when it uses scikit-learn
    if predict is None or sklearn is None:
        return predict

    def checked(*args: Any, **kwargs: Any) -> Any:
        with sklearn.config_context(assume_finite=False):
            return predict(*args, **kwargs)

    return checked


def _predictors(
    pyfunc: Any, schema: InputSchema
) -> tuple[Callable[[Any], Any], Callable[[Any, dict[str, Any]], Any] | None]:
    """The model's predict without MLflow's second input check (where loopline checked the columns; a
    model declaring params gets their defaults, as MLflow gives them), and predict with ``params`` when
    the model declares them (checked before: serving/params.py)."""
    metadata = pyfunc.metadata
    from_hints = getattr(metadata, "_is_signature_from_type_hint", lambda: False)()
    inner = getattr(pyfunc, "_predict_fn", None)
    params_schema = metadata.get_params_schema() if hasattr(metadata, "get_params_schema") else None
    if schema.columns is None or from_hints or inner is None:
        plain = pyfunc.predict
        return plain, (lambda data, params: pyfunc.predict(data, params=params)) if params_schema else None
    parameter = inspect.signature(inner).parameters.get("params")
    takes_params = parameter is not None and parameter.kind != inspect.Parameter.VAR_KEYWORD
    if params_schema is None or not takes_params:
        return inner, None
    from mlflow.models.utils import _enforce_params_schema

    defaults = _enforce_params_schema(None, params_schema)  # what MLflow gives where none are sent
    return lambda data: inner(data, params=dict(defaults)), lambda data, params: inner(data, params=params)


def check_model(folder: Path, digest: str = "", nulls: bool = True) -> LoadedModel:
    """Load a model and answer its input example, and (with ``nulls``) the example with each optional
    column null: the model loaded, or a refusal saying what went wrong."""
    try:
        model = load_model(folder, digest)
        answer = model.answer_example()
    except Exception as exc:  # any failure to load or answer means: do not deploy
        found = differences(folder)
        hint = f"; {said(found)}: install its requirements where loopline runs" if found else ""
        raise Refused(
            f"the model does not load and answer its input example: {_first_line(exc)}{hint}"
        ) from None
    if answer is not None and isinstance(answer, np.ndarray) and answer.shape[:1] == (0,):
        raise Refused("the model answered its input example with no predictions")
    model.example_answer = answer
    _answers_each_row(model)
    for column, data in model.null_probes() if nulls else ():
        try:
            model.predict(data)
        except Exception as exc:  # the signature says the column may be null, the model disagrees
            raise Refused(
                f"the model fails when optional column '{column}' is null ({_first_line(exc)}); its "
                "signature allows nulls there: impute them in the model, or log the model with a "
                "signature that marks the column required (or deploy with --no-check)"
            ) from None
    return model


_ROW_WISE = frozenset({"sklearn", "xgboost", "lightgbm", "catboost"})
"""Flavors whose models answer each row they are given (a forecaster or a custom model may answer a whole
table with one answer, or a row with many)."""


def _answers_each_row(model: LoadedModel) -> None:
    """A model of a row-wise flavor answers as many rows as it is given its input example (twice over
    when the example is one row), or, logged without one (as autolog logs it), a row of placeholder values
    of its signature's types twice; one that answers fewer takes the table as one item."""
    if not _ROW_WISE & model.flavors:
        return
    example = model.example is not None and bool(model.example.rows)
    table = model.example if example else placeholder_row(model.schema)
    if table is None:
        return
    rows = table.rows if len(table.rows) > 1 else table.rows * 2
    try:
        data, _ = to_model_input(model.schema, replace(table, rows=rows), matrix=model.batchable)
        answered = len(model.predict(data))
    except Exception:  # what it answers is for the example itself to show; this asks only how many
        return
    if answered >= len(rows):
        return
    texts = [c.name for c in model.schema.columns or () if c.type in TEXT]
    fix = (
        f'select the column in the model (ColumnTransformer([("text", TfidfVectorizer(), "{texts[0]}")]) '
        f'as the pipeline\'s first step, fitted on the table df[["{texts[0]}"]]) and log it again'
        if len(texts) == 1
        else "log a model that answers each row"
    )
    given = (
        f"the {len(rows)} rows of its input example"
        if len(table.rows) > 1
        else "its example's row twice"
        if example
        else "a row of its signature's types twice (it was logged without an input example)"
    )
    raise Refused(
        f"the model answered {answered} prediction{'' if answered == 1 else 's'} for {given}: it takes "
        "the whole table as one item (as a pipeline that starts with a text vectorizer does: given a "
        f"table, it reads the column names as the texts); {fix}"
    )


def _first_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
