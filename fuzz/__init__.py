"""Coverage-guided fuzz harnesses (atheris) for the stream decoder, the session layer and the
whole emulated pump; see fuzz/README.md. Importable without atheris: the stored corpora are
replayed by tests/test_fuzz_corpus.py."""
