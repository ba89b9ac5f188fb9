"""`gen demo`: a web page per model and a JSON API beside it (gen.demo.app), for trying a generator
before wiring Triton into anything. Needs the `demo` extra (FastAPI, uvicorn)."""
