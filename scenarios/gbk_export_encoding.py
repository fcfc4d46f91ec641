"""export-lost-to-disk-and-encoding (encoding half): a GBK export of rows GBK cannot hold."""

from harness.scenario import Expect, Export, Scenario, Step, Workload

SCENARIO = Scenario(
    name="gbk_export_encoding",
    description="GBK export with emoji and Thai rows: each bad row dead-lettered with its reason, the rest intact",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=200, profile="encoding_faults_gbk"),
    steps=(Step("after", Export("gbk.jsonl", encoding="gbk")),),
    expect=Expect(),
    catches=("lossy_encoding",),
    during_s=1.0,
)
