"""Distillation methods, one module each (torch side); `gen.trainkit.distill` holds their options.

Each module defines `Student`, a DDPM trainer that learns from a frozen teacher (see base.py).
"""
