"""Streamlit helpers the pages share: the only part of ``ganmm`` that imports Streamlit."""
