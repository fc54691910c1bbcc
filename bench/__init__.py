"""The benchmark: segserve against the d2l chapter's own loading pipeline, in one run.

``python -m bench`` (``make bench``) generates the demo dataset, measures the
chapter's ``VOCSegDataset`` + gluon ``DataLoader`` in process and segserve over
loopback HTTP through the client, interleaved round by round, and writes a
markdown report and a plot. See :mod:`bench.run` for the phases.
"""
