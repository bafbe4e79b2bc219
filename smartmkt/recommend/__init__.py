"""The hybrid recommender: MiniLM text + collaborative embeddings, FAISS retrieval, filters."""
