"""The one compiled part of wlearn; everything else is configured in pyproject.toml.

``wlearn/losses/_pixel_lanes.c`` is the per-pixel Sinkhorn solver of the soft Wasserstein loss
on the CPU (plain C and POSIX threads, no other library). It is optional: where it does not
build (no C compiler), the install goes on and wlearn uses its PyTorch path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wlearn.losses._pixel_lanes",
            sources=["wlearn/losses/_pixel_lanes.c"],
            extra_compile_args=["-O3", "-std=c11", "-pthread"],
            extra_link_args=["-pthread"],
            optional=True,
        )
    ]
)
