"""Knowledge: loading articles and FAQs, chunking, ingestion and hybrid retrieval."""
