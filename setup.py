"""Installs localgrad: `pip install -e .` (add `[test]` for the test tools)."""

import setuptools

setuptools.setup(
    name="localgrad",
    version="0.1.0",
    description="Greedy block-wise (local) learning for Keras 3 / TensorFlow",
    packages=setuptools.find_packages(include=["localgrad", "localgrad.*"]),
    # SEDONA's published decouplings (localgrad/search/published.py).
    package_data={"localgrad.search": ["published_decouplings/*.json"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-datasets",
        "numpy",
        "absl-py",
        "tensorboard",
        "ml-collections",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "scikit-learn", "mnist1d", "ruff"],
    },
)
