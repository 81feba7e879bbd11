"""bench/tuning/flags.py's account of a question's other terms: what it prints beside each flag."""

from types import SimpleNamespace

from bench.tuning.flags import others_held


def test_the_other_terms_held_are_counted_in_one_passage_without_the_unknown_names():
    passages = [SimpleNamespace(text="The missile has a range of 5,000 km."), SimpleNamespace(text="Russia tested it.")]
    question = "What is the range of the Oreshnik missile of Russia?"
    assert others_held(question, ("Oreshnik",), passages) == "2/3"  # range and missile together; Russia apart
    assert others_held(question, (), passages) == "2/4"  # an unknown name not left out is a term none holds
    assert others_held(question, ("Oreshnik",), []) == "0/3"
