"""How a model's requirements (the requirements.txt MLflow writes beside it) differ from the packages here."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from loopline.model_environment import Difference, differences, said, warning

SKLEARN = version("scikit-learn")
NUMPY = version("numpy")


def model_folder(tmp_path: Path, requirements: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text(requirements)
    return folder


def test_requirements_the_packages_here_do_not_meet_are_listed_in_the_files_order(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path,
        f"""# written by a laptop's pip freeze
mlflow=={version("mlflow")}
scikit-learn==1.5.2  # the one it was trained with
numpy=={NUMPY}
boosted-forest-nowhere==1.2.7  # installed nowhere
pandas>=1,<2
pywin32==306; sys_platform == "win32"
-r more-requirements.txt
--index-url https://pypi.example.com/simple
my-lib @ https://example.com/my_lib-1.0.tar.gz#sha256=00
not a requirement at all ===
scipy
""",
    )
    assert differences(folder) == (
        Difference("scikit-learn==1.5.2", SKLEARN),
        Difference("boosted-forest-nowhere==1.2.7", None),
        Difference("pandas>=1,<2", version("pandas")),
    )
    assert [str(d) for d in differences(folder)] == [
        f"scikit-learn==1.5.2 ({SKLEARN} here)",
        "boosted-forest-nowhere==1.2.7 (not installed)",
        f"pandas>=1,<2 ({version('pandas')} here)",
    ]


def test_a_model_logged_here_or_without_requirements_differs_in_nothing(tmp_path: Path) -> None:
    assert differences(model_folder(tmp_path, f"scikit-learn=={SKLEARN}\nnumpy\n")) == ()
    assert differences(tmp_path) == ()  # no requirements.txt at all


def test_a_package_installed_as_another_distribution_of_the_same_module_meets_its_requirement(
    tmp_path: Path,
) -> None:
    # xgboost-cpu (XGBoost's wheel without CUDA, installed here) provides the module MLflow lists as xgboost
    here = version("xgboost-cpu")
    assert differences(model_folder(tmp_path / "same", f"xgboost=={here}\n")) == ()
    assert differences(model_folder(tmp_path / "older", "xgboost==1.7.6\n")) == (
        Difference("xgboost==1.7.6", here),
    )


def test_only_the_first_64_kib_of_an_uploaded_file_are_read(tmp_path: Path) -> None:
    filler = "# padding\n" * 7000  # 70,000 bytes of comments, then a requirement past the limit
    assert differences(model_folder(tmp_path, filler + "boosted-forest-nowhere==1.2.7\n")) == ()


def test_the_warning_names_the_deployment_the_first_differences_and_how_many_more() -> None:
    found = [Difference(f"package-{n}==1.0", None) for n in range(6)]
    assert said(found[:1]) == "the model was logged with package-0==1.0 (not installed)"
    line = warning("churn/blue", found)
    assert line.startswith("warning: deployment churn/blue: the model was logged with package-0==1.0")
    assert "package-3==1.0 (not installed) and 2 more;" in line
    assert "package-4" not in line
    assert "install its requirements where loopline serves it" in line


def test_a_difference_names_its_package_as_pip_compares_names() -> None:
    assert Difference("Scikit_Learn==1.5.2", "1.9.1").name == "scikit-learn"
    assert Difference("scikit-learn-extra>=0.3; python_version >= '3'", None).name == "scikit-learn-extra"


def skops_model(tmp_path: Path, requirements: str, schema: dict[str, object] | None = None) -> Path:
    """A scikit-learn model saved as MLflow saves it by default (skops), with ``requirements`` beside it;
    ``schema`` in place of skops's own where given (the file of a model that names other modules)."""
    import zipfile

    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "model"
    fitted = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    mlflow.sklearn.save_model(fitted, folder, serialization_format="skops")
    if schema is not None:
        with zipfile.ZipFile(folder / "model.skops", "w") as archive:
            archive.writestr("schema.json", json.dumps(schema))
    (folder / "requirements.txt").write_text(requirements)
    return folder


TRAINED_BESIDE_TORCH = f"scikit-learn=={SKLEARN}\ntorch==2.13.0+cpu\ncupy-cuda12x==13.3.0\ndask==2024.8.0\n"


def test_array_libraries_listed_only_because_they_were_installed_where_it_trained_are_not_differences(
    tmp_path: Path,
) -> None:
    # MLflow lists torch (and CuPy, Dask) for a skops-saved scikit-learn model trained where they are
    # installed: loading it walks scikit-learn's modules, whose array adapters import them.
    assert differences(skops_model(tmp_path / "plain", TRAINED_BESIDE_TORCH)) == ()
    # A model whose file names torch's modules (a skorch network, say) needs it, and only it.
    uses_torch = {
        "__class__": "NeuralNet",
        "__module__": "skorch.net",
        "content": [{"__class__": "Linear", "__module__": "torch.nn.modules.linear"}],
    }
    folder = skops_model(tmp_path / "net", TRAINED_BESIDE_TORCH, uses_torch)
    assert [d.name for d in differences(folder)] == ["torch"]
    # A file skops did not write tells nothing: every requirement counts; and so for a pickled model.
    (folder / "model.skops").write_bytes(b"not a zip archive")
    assert [d.name for d in differences(folder)] == ["torch", "cupy-cuda12x", "dask"]
    pickled = model_folder(tmp_path / "pickled", TRAINED_BESIDE_TORCH)
    (pickled / "model.pkl").write_bytes(b"")
    assert [d.name for d in differences(pickled)] == ["torch", "cupy-cuda12x", "dask"]


TRAINED_BESIDE_TOOLS = f"scikit-learn=={SKLEARN}\npytest==1.0\nrich==1.0\npolars==0.1\npsutil==1.0\n"


def test_packages_the_loading_libraries_import_where_installed_are_not_differences(tmp_path: Path) -> None:
    # Trained where pytest, rich, polars and psutil are installed, MLflow lists them for any scikit-learn
    # model: loading it imports them (scikit-learn's test utilities and progress bars, MLflow's datasets
    # and tracing). A serving process without them warned of four packages the model never uses.
    assert differences(skops_model(tmp_path / "plain", TRAINED_BESIDE_TOOLS)) == ()
    # A model naming a module of the user's own (its code unknown here) may import them: they count.
    own = {"__class__": "Ratios", "__module__": "features", "content": {}}
    folder = skops_model(tmp_path / "own", TRAINED_BESIDE_TOOLS, own)
    assert [d.name for d in differences(folder)] == ["pytest", "rich", "polars", "psutil"]
    # So where the model carries code of its own (code_paths), and where it names one of them itself.
    coded = skops_model(tmp_path / "coded", TRAINED_BESIDE_TOOLS)
    (coded / "code").mkdir()
    assert len(differences(coded)) == 4
    frame = {"__class__": "DataFrame", "__module__": "polars.dataframe.frame", "content": {}}
    assert [d.name for d in differences(skops_model(tmp_path / "polars", TRAINED_BESIDE_TOOLS, frame))] == [
        "polars"
    ]
