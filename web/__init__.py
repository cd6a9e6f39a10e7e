"""The officer's page as the Python package ships it (genuine.web): site/ (its HTML and JavaScript) and vendor/
(onnxruntime-web, OpenCV.js, zxing-wasm, copied there by `npm ci` in web/). `genuine page build` copies both into
every site (infer/page_build.py). No Python code lives here."""
