"""Build hook for cointrail's compiled decoder core (see src/cointrail/chain/utxo/_speedups.c).

The C core is optional: if it cannot be built (no compiler), cointrail falls back to the
pure-Python reference decoder, which gives identical results, only slower.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure falls back to pure Python
            print(f"cointrail: compiled decoder not built ({exc}); using the pure-Python decoder")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"cointrail: {ext.name} not built ({exc}); using the pure-Python decoder")


setup(
    ext_modules=[
        Extension(
            "cointrail.chain.utxo._speedups",
            sources=["src/cointrail/chain/utxo/_speedups.c"],
            libraries=["crypto"],
            extra_compile_args=["-O3", "-Wno-deprecated-declarations"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
