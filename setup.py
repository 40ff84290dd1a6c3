"""Build hook for cointrail's compiled cores: the block decoder
(src/cointrail/chain/utxo/_speedups.c), the union-find
(src/cointrail/analysis/clustering/_unionfind.c) and the ingest core
(src/cointrail/store/_ingestcore.c).

All are optional: if one cannot be built (no compiler), cointrail falls back to its pure-Python
reference, which gives identical results, only slower. CI requires both to be built.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any build failure falls back to pure Python
            print(f"cointrail: compiled cores not built ({exc}); using pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"cointrail: {ext.name} not built ({exc}); using its pure-Python fallback")


setup(
    ext_modules=[
        Extension(
            "cointrail.chain.utxo._speedups",
            sources=["src/cointrail/chain/utxo/_speedups.c"],
            libraries=["crypto"],
            extra_compile_args=["-O3", "-Wno-deprecated-declarations"],
            optional=True,
        ),
        Extension(
            "cointrail.analysis.clustering._unionfind",
            sources=["src/cointrail/analysis/clustering/_unionfind.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "cointrail.store._ingestcore",
            sources=["src/cointrail/store/_ingestcore.c"],
            libraries=["crypto"],
            extra_compile_args=["-O3", "-Wno-deprecated-declarations"],
            optional=True,
        ),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
