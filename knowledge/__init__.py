"""The knowledge base behind `/learn`: Google Drive PDFs, synced, extracted and searched.

- `credentials`: the Drive service-account credentials (key from Secret Manager or inline).
- `drive`: list and download the folder's PDFs (google-api-python-client, off the event loop).
- `pdf_text`: text per page under caps, cut into passages; typed `SkippedDocument` otherwise.
- `sync`: `DriveSync`, the orchestrator (changes only, removals, one run at a time, schedule).
- `llm`: an OpenAI-compatible chat client (retries, timeouts, streaming).
- `answers`: the prompt from a question and passages, extractive answers, sources, final text.

SQL lives in `store.knowledge`; nothing here imports aiohttp.web, discord or cogs.
"""
