"""Stage names, defined once: the engine's table, the records and the leaderboards use these."""

AUGMENT = "augment"
FIT = "fit"
FIT_READER = "fit-reader"
FIT_INJECTOR = "fit-injector"
INDEX = "index"
SEARCH = "search"
RERANK = "rerank"
ANSWER = "answer"
#: stages whose manifests form the record's ``training`` section, in run order
TRAINING_STAGES = (AUGMENT, FIT, FIT_READER, FIT_INJECTOR)
#: training stages and the role each trains
FIT_STAGES = {FIT: "retriever", FIT_READER: "reader", FIT_INJECTOR: "injector"}
