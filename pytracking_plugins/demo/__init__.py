"""The paper's experiment in miniature: ``mkdnet-demo`` (:mod:`.pipeline`) and ``mkdnet-ablation`` (:mod:`.ablation`)
train their own teacher and students on synthetic tiny objects and compare them (:mod:`.experiment`)."""
