from retbench_example import JaccardRetriever

from retbench.testing import check_retriever


def test_contract():
    check_retriever(JaccardRetriever)


def test_found_and_run_through_a_fresh_plugin_manager(retbench_cache):
    import retbench_example

    from retbench import RunConfig, evaluate
    from retbench.testing import make_plugin_manager

    pm = make_plugin_manager(retbench_example)
    record = evaluate(RunConfig(dataset="mock", retriever="jaccard"), pm=pm, cache=retbench_cache)
    assert record.metrics["nDCG@10"] > 0.5
