"""Headers: every column is recognised or reported; a near miss stops the plan (issue 18.2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.commands.spec import RunSpec
from bulk_delete.errors import InputError
from bulk_delete.plan.build import build_plan
from bulk_delete.plan.rules import PlanOptions, plan_fingerprint
from bulk_delete.sheet.headers import HEADER_ALIASES, near_miss
from bulk_delete.sheet.read import open_sheet

G1 = "3aee22bd-8419-422a-8242-c510df9af021"

# Headers real lead sheets carry (LeadSquared exports, CRM dumps, marketing lists).
COMMON_HEADERS = """
Name, First Name, Last Name, Full Name, Email, Email Address, Secondary Email, Phone,
Phone Number, Mobile, Mobile Number, Alternate Phone, Owner, Lead Owner, Owner Email, Stage,
Lead Stage, Status, Lead Status, Notes, Note, City, State, Country, Country Code, Region,
Source, Lead Source, Source Campaign, Source Medium, Created On, Modified On, Created By,
Modified By, Date, Created Date, Modified Date, Company, Company Name, Website, Score,
Lead Score, Engagement Score, Campaign, Campaign Name, Activity, Activity Date, Activity Type,
Activity Owner, Activity Score, Activity Note, Activity Notes, Activity Id, Activities,
Last Activity, Last Activity Date, Next Activity, Event, Event Date, Event Name, Events,
Remarks, Comments, Comment, Id, Lead Number, Lead Name, Lead Type, Lead Origin, Code Name,
Product, Product Code, Amount, Deal Value, Revenue, Zip, Zip Code, Pincode, Postal Code,
Address, Address 1, Address 2, Street, Job Title, Designation, Department, Industry,
Gender, Age, Date of Birth, DOB, Stage Date, Send Date, Sent Date, Start Time, End Time,
Due Date, Close Date, Closed On, Enquiry Date, Entry Date, Today, Total, Todo, Tags, Tag,
Segment, Priority, Rating, Timezone, Time Zone, Language, Currency, Promo Code, Coupon Code,
Status Code, Status Date, Webinar, Website URL, LinkedIn, Twitter, Facebook, UTM Source,
UTM Medium, UTM Campaign, Referrer, Referral Code, Lead Age, Lead Quality, Opportunity,
Description, Subject, Message, Type, Category, Sub Category, Branch, Team, Region Code,
Account, Account Name, Contact, Contact Id, Verified, Opt In, Do Not Email, Do Not Call,
Unsubscribed, Bounced, Order Id, Invoice, Invoice Date, Course, Program, Batch, Center,
S.No, Sr No, Serial, #, Sl. No., Row, From Email, From Name, To Email, Fax, Salary
"""
COMMON = [name.strip() for name in COMMON_HEADERS.replace("\n", " ").split(",")]

# Typos of the known columns → the column each must be taken for.
NEAR_MISSES = {
    "Form Date": "FromDate",
    "FormDate": "FromDate",
    "From_Dt": "FromDate",
    "From Dt": "FromDate",
    "Frm Date": "FromDate",
    "Fromdat": "FromDate",
    "Strat Date": "FromDate",
    "Start Dt": "FromDate",
    "From Date (IST)": "FromDate",
    "To Dt": "ToDate",
    "ToDat": "ToDate",
    "Tdate": "ToDate",
    "End Dt": "ToDate",
    "EndDat": "ToDate",
    "Edn Date": "ToDate",
    "ActivtyEvent": "ActivityEventList",
    "Acitivity Code": "ActivityEventList",
    "Activity Cd": "ActivityEventList",
    "Activty Evnt": "ActivityEventList",
    "ActivityEventLst": "ActivityEventList",
    "Activity Event Lists": "ActivityEventList",
    "Event Cd": "ActivityEventList",
    "Evnt Code": "ActivityEventList",
    "Prospectid1": "ProspectId",
    "Prospect Idd": "ProspectId",
    "Porspect Id": "ProspectId",
    "Lead Ids": "ProspectId",
    "Lead_Idx": "ProspectId",
    "Webhok": "StatusWebhookURL",
    "Webhook Ur": "StatusWebhookURL",
    "Status Webhook Url1": "StatusWebhookURL",
    "Satus Webhook URL": "StatusWebhookURL",
}


def test_the_common_list_is_long_enough() -> None:
    assert len(COMMON) >= 80
    assert len(NEAR_MISSES) >= 20


@pytest.mark.parametrize("header", COMMON)
def test_common_lead_sheet_headers_are_never_near_misses(header: str) -> None:
    assert near_miss(header) is None


@pytest.mark.parametrize(("header", "column"), NEAR_MISSES.items())
def test_near_misses_are_caught_with_their_column(header: str, column: str) -> None:
    assert near_miss(header) == column


def test_every_alias_is_recognised_not_a_near_miss() -> None:
    for aliases in HEADER_ALIASES.values():
        for alias in aliases:
            assert near_miss(alias) is None


@pytest.mark.parametrize(
    "header", ["Prospect Id", "Lead ID", "prospect_id", "Lead-Id.", "(LeadId)"]
)
def test_prospect_id_spellings_are_simply_accepted(
    write_csv: Callable[..., Path], header: str
) -> None:
    with open_sheet(write_csv(f"{header},Codes\n{G1},163\n")) as sheet:
        assert sheet.info.columns["ProspectId"] == header
        assert sheet.info.ignored == ()


def test_form_date_stops_the_plan_naming_the_column(write_csv: Callable[..., Path]) -> None:
    """Before: 'Form Date' was ignored and every activity before ToDate was purged."""
    path = write_csv(f"ProspectId,Codes,Form Date,ToDate\n{G1},163,2024-01-01,2024-01-31\n")
    with pytest.raises(InputError) as raised:
        build_plan(path, PlanOptions())
    assert str(raised.value) == (
        f"{path}: column 'Form Date' looks like FromDate (did you mean FromDate?); rename it, "
        "or pass --ignore-column 'Form Date' to leave it out"
    )


def test_a_near_miss_exits_2_before_anything(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"ProspectId,ActivtyEvent\n{G1},163\n")
    result = CliRunner().invoke(cli, ["plan", str(path), "--codes", "163"])
    assert result.exit_code == 2
    assert "column 'ActivtyEvent' looks like ActivityEventList" in result.stderr


def test_ignore_column_accepts_a_near_miss_and_the_plan_lists_it(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(f"ProspectId,Codes,Form Date,Email\n{G1},163,2024-01-01,a@b.c\n")
    result = CliRunner().invoke(cli, ["plan", str(path), "--ignore-column", "form date"])
    assert result.exit_code == 0, result.output
    assert "ignored columns Form Date, Email (not used by bulk-delete)" in result.stdout
    assert "NO DATE FILTER" in result.stdout  # what leaving it out means is shown


def test_ignore_column_is_repeatable_and_part_of_the_fingerprint(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(f"ProspectId,Codes,Form Date,To_Dt\n{G1},163,2024-01-01,2024-01-02\n")
    spec = RunSpec.from_values({"ignore_columns": ("Form Date", "To_Dt")})
    assert spec.plan_options.ignore_columns == ("Form Date", "To_Dt")
    plan = build_plan(path, spec.plan_options)
    assert plan.source.ignored == ("Form Date", "To_Dt")
    assert plan_fingerprint(path, spec.plan_options) != plan_fingerprint(path, PlanOptions())
    # a job file's list goes through the same parser
    job = RunSpec.from_values({"ignore_columns": ["Form Date"]}, source="job.toml")
    assert job.ignore_columns == ("Form Date",)


def test_an_ignore_column_that_names_nothing_is_a_warning(write_csv: Callable[..., Path]) -> None:
    with open_sheet(write_csv(f"ProspectId\n{G1}\n"), ignore_columns=("Form Date",)) as sheet:
        assert sheet.info.warnings == (
            "--ignore-column 'Form Date' matches no column of the sheet",
        )


def test_other_columns_are_listed_as_ignored(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"Name,ProspectId,Email,Phone,Codes\nA,{G1},a@b.c,1,163\n")
    with open_sheet(path) as sheet:
        assert sheet.info.ignored == ("Name", "Email", "Phone")


def test_every_near_miss_is_named_at_once(write_csv: Callable[..., Path]) -> None:
    with pytest.raises(InputError, match=r"'Form Date' looks like FromDate.*'End Dt' looks like"):
        open_sheet(write_csv(f"ProspectId,Form Date,End Dt\n{G1},a,b\n"))


def test_a_zone_noted_copy_of_a_present_column_is_ignored(write_csv: Callable[..., Path]) -> None:
    """The local-time columns a preview or export may carry next to the UTC ones."""
    path = write_csv(
        f"ProspectId,FromDate,FromDate (Asia/Kolkata),ToDate (UTC),ToDate\n{G1},a,b,c,d\n"
    )
    with open_sheet(path) as sheet:
        assert sheet.info.ignored == ("FromDate (Asia/Kolkata)", "ToDate (UTC)")


def test_a_zone_noted_column_alone_is_a_near_miss(write_csv: Callable[..., Path]) -> None:
    with pytest.raises(InputError, match=r"'FromDate \(Asia/Kolkata\)' looks like FromDate"):
        open_sheet(write_csv(f"ProspectId,FromDate (Asia/Kolkata)\n{G1},a\n"))


def test_a_duplicated_known_column_still_errors(write_csv: Callable[..., Path]) -> None:
    with pytest.raises(InputError, match="two columns mean FromDate: 'From' and 'Start Date'"):
        open_sheet(write_csv(f"ProspectId,From,Start Date\n{G1},a,b\n"))


def test_near_misses_in_an_excel_header_too(write_xlsx: Callable[..., Path]) -> None:
    path = write_xlsx([["ProspectId", "From_Dt"], [G1, "2024-01-01"]])
    with pytest.raises(InputError, match="'From_Dt' looks like FromDate"):
        open_sheet(path)
    with open_sheet(path, ignore_columns=["From_Dt"]) as sheet:
        assert sheet.info.ignored == ("From_Dt",)
