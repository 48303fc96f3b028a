"""Experiment modules end to end on the tiny random model: they run, save results with their config, write
figures, print a summary, redraw from the saved result, and hand their interventions to the side-effect
experiment. (What the numbers are is tested on the embedded model in the library's own tests.)"""

from __future__ import annotations
