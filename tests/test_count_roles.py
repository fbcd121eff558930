"""Count for any label set (issue 23): a class-roles table says what each class means — paper's 15
labels, RBC/WBC/Platelets sets such as BCCD, the 5-part differential, or a user's own table."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from harness.count.cells import Cell
from harness.count.differential import SlideResult, count_labels
from harness.count.pages import write_pages
from harness.class_roles import ClassRolesError, load_roles, roles_for_model
from harness.count.tables import differential_columns, write_differential_csv

BCCD = ["RBC", "WBC", "Platelets"]
FIVE = ["Neutrophil", "Lymphocyte", "Monocyte", "Eosinophil", "Basophil"]


def test_builtin_table_is_chosen_by_the_models_classes():
    assert roles_for_model(["LYM", "sNEU", "NRBC"]).name == "paper-15"
    assert roles_for_model(BCCD).name == "rbc-wbc-platelets"
    assert roles_for_model([c.lower() for c in FIVE]).name == "wbc-5"          # case does not matter
    with pytest.raises(ClassRolesError, match=r"no built-in class-roles table .*\['RBC', 'Sickle'\].*--classes"):
        roles_for_model(["RBC", "Sickle"])


def test_three_class_slide_gives_counts_per_field_ratios_and_their_flags():
    roles = roles_for_model(BCCD)
    d = count_labels(["RBC"] * 1000 + ["WBC"] * 4 + ["Platelets"] * 20, roles, fields=10)
    assert d.wbc == 4 and d.percent("WBC") == pytest.approx(100.0)
    assert d.per_field("red_cell") == pytest.approx(100.0) and d.per_field("platelet") == pytest.approx(2.0)
    assert d.ratio("platelets_per_1000_rbc") == pytest.approx(20.0)
    assert d.ratio("wbc_per_1000_rbc") == pytest.approx(4.0)
    assert set(d.flags()) == {"platelets_low", "wbc_high"}                      # 20 < 30, 4 > 2.2
    assert count_labels(["WBC"], roles).ratio("platelets_per_1000_rbc") is None  # no red cells: undefined
    columns = differential_columns(roles)
    for column in ("WBC_n", "RBC_n", "Platelets_n", "rbc_per_field", "platelets_per_field",
                   "platelets_per_1000_rbc", "wbc_per_1000_rbc"):
        assert column in columns
    assert "NRBC_per_100_WBC" not in columns and "sNEU_pct" not in columns


def test_five_part_differential_against_its_reference_ranges(tmp_path: Path):
    roles = roles_for_model(FIVE)
    labels = ["Neutrophil"] * 50 + ["Lymphocyte"] * 30 + ["Monocyte"] * 8 + ["Eosinophil"] * 9 + ["Basophil"] * 3
    d = count_labels(labels, roles, fields=20)
    assert d.wbc == 100 and d.percent("Eosinophil") == pytest.approx(9.0)
    assert set(d.flags()) == {"eosinophilia", "basophilia"}
    assert differential_columns(roles)[6:11] == [f"{c}_n" for c in FIVE]
    # a slide page and differential.csv from a small synthetic slide of this label set
    image = tmp_path / "field.png"
    import cv2

    cv2.imwrite(str(image), np.full((120, 160, 3), 200, np.uint8))
    result = SlideResult("five", roles, fields=1, files={"field": "field.png"}, paths={"field": image})
    result.cells = [Cell("field", (10 + 20 * i, 30, 25 + 20 * i, 50), label, 0.9) for i, label in enumerate(FIVE)]
    result.cells.append(Cell("field", (0, 0, 10, 10), "Neutrophil", 0.9, border=True))
    write_differential_csv([result], roles, tmp_path / "differential.csv")
    (row,) = csv.DictReader((tmp_path / "differential.csv").open())
    assert row["wbc"] == "5" and row["Neutrophil_pct"] == "20.00" and row["border_excluded"] == "1"
    pages = write_pages([result], roles, tmp_path, "five-class model", None, {})
    page = pages["five"].read_text()
    assert "Neutrophil" in page and "40–75" in page and "no leukocytes detected" not in page
    assert "sNEU" not in page


def test_users_table_must_name_every_class_and_use_known_roles(tmp_path: Path):
    table = tmp_path / "roles.json"
    table.write_text(json.dumps({"name": "lab", "classes": {"RBC": {"role": "red_cell"},
                                                            "Sickle": {"role": "red_cell"}}}))
    assert roles_for_model(["RBC", "Sickle"], explicit=table).name == "lab"
    with pytest.raises(ClassRolesError, match=r"roles\.json: the model's classes \['WBC'\]"):
        roles_for_model(["RBC", "WBC"], explicit=table)
    table.write_text(json.dumps({"classes": {"RBC": {"role": "erythrocyte"}}}))
    with pytest.raises(ClassRolesError, match=r"roles\.json: class 'RBC' has role 'erythrocyte'"):
        load_roles(table)
    table.write_text(json.dumps({"classes": {"WBC": {"role": "leukocyte"}},
                                 "flags": {"x": {"categories": ["LYM"], "percent_above": 5, "text": "t"}}}))
    with pytest.raises(ClassRolesError, match=r"flag 'x' needs percent_above and categories"):
        load_roles(table)


def test_not_counted_class_is_listed_but_not_counted():
    table = load_roles(Path(__file__).resolve().parents[1] / "harness/class_roles/paper-15.json")
    roles = dataclasses.replace(table, roles={**table.roles, "Artefact": "not_counted"})
    result = SlideResult("s", roles, fields=1)
    result.cells = [Cell("f", (10, 10, 20, 20), "Artefact", 0.9), Cell("f", (30, 30, 40, 40), "LYM", 0.9)]
    assert [c.label for c in result.counted] == ["LYM"]
    assert result.differential.counts["Artefact"] == 0 and result.differential.wbc == 1


def test_model_folder_table_is_used_without_an_option(tmp_path: Path):
    (tmp_path / "class_roles.json").write_text(json.dumps({"name": "mine", "classes": {"A": "leukocyte",
                                                                                          "B": "platelet"}}))
    assert roles_for_model(["A", "B"], model_dir=tmp_path).name == "mine"
