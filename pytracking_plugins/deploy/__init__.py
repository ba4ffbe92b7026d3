"""Deploying a DiMP-family tracking network (MKDNet's student, Super-DiMP): its gradient-free inference networks as
ONNX files (:mod:`.onnx_export`, the command ``mkdnet-export --onnx``), described by a plain JSON manifest
(:mod:`.manifest`), and run by onnxruntime for the tracker (:mod:`.onnx_runtime`, ``params.backend =
'onnxruntime'``). :mod:`.graphs` says what each exported network computes.
"""
