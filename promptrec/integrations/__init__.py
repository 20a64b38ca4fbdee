"""promptrec where other frameworks run: LangChain retrievers and agent tools (``promptrec[langchain]``)."""
