"""The run store: a search's run directory as typed records (store/run_store.py).

Between the training library (core, spaces) and the layers that read and write a search's
records (reports, search): the search's recorder writes `TrialRecord`s and `SearchInfo` here, the
reports, the live view and the searcher read them back. Nothing here trains or decides.
"""
