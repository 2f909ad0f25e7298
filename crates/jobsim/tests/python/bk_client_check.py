#!/usr/bin/env python3
"""Drive `jobsim` with BlueKing's own Python API clients, unmodified.

Uses `bkapi-component-open` (the ESB component client, which carries the `jobv3` group) and
`bkapi-client-core` (its ESB and API-gateway base clients). The v2 `job/` components and the
`bk-job` gateway resources are not pre-declared in any published package, so they are declared
here with the library's own `Operation` / `OperationGroup` extension mechanism, exactly as an
application would; the HTTP, auth and parsing code that runs is the library's.

    pip install bkapi-component-open==2.1.0 bkapi-client-core==1.2.0
    cargo build -p plan-jobsim
    python3 crates/jobsim/tests/python/bk_client_check.py [--jobsim target/debug/jobsim]

It starts `jobsim` on a temporary sandbox, submits v2 and v3 jobs through ESB and the gateway,
polls them to the end, checks the documented shapes and error codes, and compares the
delivered files byte for byte. The last line is `N passed, M failed`; the exit code is 0 only
when nothing failed.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import shutil
import tempfile
import time

from bkapi_client_core.apigateway import APIGatewayClient
from bkapi_client_core.base import Operation, OperationGroup
from bkapi_client_core.esb import ESBClient
from bkapi_client_core.exceptions import APIGatewayResponseError
from bkapi_client_core.property import bind_property
from bkapi_component.open.client import Client as ComponentClient

APP = dict(bk_app_code="plan", bk_app_secret="secret", bk_username="admin")
RESULTS = {"passed": 0, "failed": 0}


# Two saved job plans of business 2, as get_job_plan_detail returns them (`plan import`).
JOB_PLANS = """
[[job_plan]]
bk_biz_id = 2
id = 1001
name = "release"
[[job_plan.step_list]]
type = 2
name = "push"
[job_plan.step_list.file_info]
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["/data/pkg.tgz"]
account = { alias = "root" }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.1" }] }
[job_plan.step_list.file_info.file_destination]
path = "/opt/app/"
account = { alias = "root" }
server = { host_id_list = [7] }

[[job_plan]]
bk_biz_id = 2
id = 1002
name = "config"
"""


def check(name, cond, detail=""):
    if cond:
        RESULTS["passed"] += 1
        print("ok   %s" % name)
    else:
        RESULTS["failed"] += 1
        print("FAIL %s %s" % (name, detail))


class JobV2Group(OperationGroup):
    fast_push_file = bind_property(Operation, name="fast_push_file", method="POST",
                                   path="/api/c/compapi{bk_api_ver}/job/fast_push_file/")
    get_job_instance_status = bind_property(Operation, name="get_job_instance_status", method="GET",
                                            path="/api/c/compapi{bk_api_ver}/job/get_job_instance_status/")
    get_job_instance_log = bind_property(Operation, name="get_job_instance_log", method="GET",
                                         path="/api/c/compapi{bk_api_ver}/job/get_job_instance_log/")


class V2Client(ESBClient):
    job = bind_property(JobV2Group, name="job")


class BkJobGateway(APIGatewayClient):
    _api_name = "bk-job"
    fast_transfer_file = bind_property(Operation, name="fast_transfer_file", method="POST",
                                       path="/api/v3/fast_transfer_file")
    get_job_instance_status = bind_property(Operation, name="get_job_instance_status", method="GET",
                                            path="/api/v3/get_job_instance_status")
    operate_job_instance = bind_property(Operation, name="operate_job_instance", method="POST",
                                         path="/api/v3/operate_job_instance")


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wait(fetch, finished_key):
    for _ in range(600):
        r = fetch()
        if r.get("data") and r["data"].get(finished_key):
            return r
        time.sleep(0.05)
    raise RuntimeError("job did not finish")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobsim", default=os.environ.get("JOBSIM_BIN", "target/debug/jobsim"))
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="jobsim-py-")
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        os.makedirs(os.path.join(root, "hosts", "0", ip), exist_ok=True)
    src = os.path.join(root, "hosts/0/10.0.0.1/data/pkg.tgz")
    os.makedirs(os.path.dirname(src))
    with open(src, "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 17))
    with open(os.path.join(root, "jobsim.toml"), "w") as f:
        f.write('[sim]\nstart_delay_ms = 50\nhost_wait_ms = 50\n\n[[app]]\ncode = "plan"\nsecret = "secret"\n')
        f.write(JOB_PLANS)

    proc = subprocess.Popen([args.jobsim, "--root", root, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        check("first line is the address", first.startswith("listening on http://127.0.0.1:"), first)
        base = first.split(" ", 2)[2]
        run(base, root, src)
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
        check("jobsim exits cleanly on SIGTERM", code == 0, "exit %s" % code)
        # Each run writes a few MiB of hosts; a check run often leaves nothing behind.
        shutil.rmtree(root, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    sys.exit(1 if RESULTS["failed"] else 0)


def run(base, root, src):
    # --- ESB jobv3 through bkapi-component-open --------------------------------------
    esb = ComponentClient(endpoint=base, bk_api_ver="v2")
    esb.update_bkapi_authorization(**APP)
    scope = {"bk_scope_type": "biz", "bk_scope_id": "2"}
    body = dict(scope, task_name="py-v3", account_alias="root", file_target_path="/opt/v3/",
                file_source_list=[{"file_list": ["/data/pkg.tgz"], "account": {"alias": "root"},
                                   "server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]}}],
                target_server={"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.2"},
                                           {"bk_cloud_id": 0, "ip": "10.0.0.3"}]})
    r = esb.jobv3.fast_transfer_file(body)
    check("v3 submit ok", r.get("result") is True and r.get("code") == 0, r)
    check("v3 submit has request_id and step id",
          len(r.get("request_id", "")) == 32 and "step_instance_id" in r.get("data", {}), r)
    job = r["data"]["job_instance_id"]
    step = r["data"]["step_instance_id"]
    # GET: the client sends return_ip_result=True as a query string ("True").
    done = wait(lambda: esb.jobv3.get_job_instance_status(dict(scope, job_instance_id=job, return_ip_result=True)),
                "finished")
    inst = done["data"]["job_instance"]
    check("v3 job succeeded", inst["status"] == 3, inst)
    check("v3 times are epoch ms", isinstance(inst["end_time"], int) and inst["end_time"] > 1_600_000_000_000, inst)
    ips = done["data"]["step_instance_list"][0]["step_ip_result_list"]
    check("v3 per-host success", sorted((h["ip"], h["status"], h["error_code"]) for h in ips)
          == [("10.0.0.2", 9, 0), ("10.0.0.3", 9, 0)], ips)
    for ip in ("10.0.0.2", "10.0.0.3"):
        dst = os.path.join(root, "hosts/0", ip, "opt/v3/pkg.tgz")
        check("v3 file on %s byte for byte" % ip, os.path.exists(dst) and sha(dst) == sha(src))
    log = esb.jobv3.get_job_instance_ip_log(dict(scope, job_instance_id=job, step_instance_id=step,
                                                  bk_cloud_id=0, ip="10.0.0.2"))
    check("v3 ip log", log["code"] == 0 and log["data"]["file_logs"][0]["mode"] == 1, log)
    batch = esb.jobv3.batch_get_job_instance_ip_log(dict(scope, job_instance_id=job, step_instance_id=step,
                                                         ip_list=[{"bk_cloud_id": 0, "ip": "10.0.0.3"}]))
    check("v3 batch log", batch["code"] == 0 and batch["data"]["file_task_logs"][0]["file_logs"][0]["process"] == "100%",
          batch)

    bad = dict(body, file_target_path="opt/relative")
    r = esb.jobv3.fast_transfer_file(bad)
    check("v3 relative path -> 1241007", r["code"] == 1241007 and r["result"] is False
          and r["message"] == "Missing or invalid request parameter [file_target_path]", r)
    bad = dict(body, target_server={"ip_list": [{"bk_cloud_id": 0, "ip": "10.9.9.9"}]})
    r = esb.jobv3.fast_transfer_file(bad)
    check("v3 unknown host -> 1244030", r["code"] == 1244030 and "(ip:0:10.9.9.9)" in r["message"], r)

    anon = ComponentClient(endpoint=base, bk_api_ver="v2")
    r = anon.jobv3.fast_transfer_file(body)
    check("ESB missing credentials -> 1306000", r["code"] == 1306000 and r["data"] is None
          and r["message"] == "APP Code [bk_app_code] cannot be empty", r)

    # --- job plans, as plan import reads them (GET with a query) -------------------------
    r = esb.jobv3.get_job_plan_list(dict(scope, start=1, length=1))
    check("job plan list pages", r["code"] == 0 and r["data"]["total"] == 2
          and [p["id"] for p in r["data"]["data"]] == [1002], r)
    r = esb.jobv3.get_job_plan_detail(dict(scope, job_plan_id=1001))
    check("job plan detail", r["code"] == 0
          and r["data"]["step_list"][0]["file_info"]["file_destination"]["path"] == "/opt/app/", r)
    r = esb.jobv3.get_job_plan_detail(dict(scope, job_plan_id=99))
    check("unknown job plan -> 1243009", r["code"] == 1243009 and r["result"] is False, r)

    # --- ESB v2 job/ ----------------------------------------------------------------
    v2 = V2Client(endpoint=base, bk_api_ver="v2")
    v2.update_bkapi_authorization(**APP)
    body2 = {"bk_biz_id": 2, "account": "root", "file_target_path": "/opt/v2",
             "file_source": [{"files": ["/data/pkg.tgz"], "account": "root",
                              "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]}],
             "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.3"}]}
    r = v2.job.fast_push_file(body2)
    check("v2 submit ok", r["code"] == 0 and "step_instance_id" not in r["data"], r)
    job2 = r["data"]["job_instance_id"]
    done = wait(lambda: v2.job.get_job_instance_status({"bk_biz_id": 2, "job_instance_id": job2}), "is_finished")
    inst = done["data"]["job_instance"]
    check("v2 job succeeded", inst["status"] == 3, inst)
    check("v2 times are strings", isinstance(inst["end_time"], str) and len(inst["end_time"]) == 19, inst)
    check("v2 total_time is float seconds", isinstance(inst["total_time"], float), inst)
    dst = os.path.join(root, "hosts/0/10.0.0.3/opt/v2/pkg.tgz")
    check("v2 file byte for byte", os.path.exists(dst) and sha(dst) == sha(src))
    log = v2.job.get_job_instance_log({"bk_biz_id": 2, "job_instance_id": job2})
    check("v2 log grouped by status", log["data"][0]["step_results"][0]["ip_status"] == 9, log)
    r = v2.job.fast_push_file(dict(body2, file_target_path="relative"))
    check("v2 relative path -> 1241007", r["code"] == 1241007, r)
    r = v2.job.fast_push_file(dict(body2, ip_list=[{"bk_cloud_id": 0, "ip": "10.9.9.9"}]))
    check("v2 unknown host -> 1244030", r["code"] == 1244030, r)

    # --- API gateway ------------------------------------------------------------------
    gw = BkJobGateway(endpoint=base + "/api/bk-job", stage="prod")
    gw.update_bkapi_authorization(**APP)
    r = gw.fast_transfer_file(dict(body, file_target_path="/opt/gw"))
    check("gateway submit ok without message/request_id", r["code"] == 0 and "message" not in r
          and "request_id" not in r, r)
    jobg = r["data"]["job_instance_id"]
    done = wait(lambda: gw.get_job_instance_status(dict(scope, job_instance_id=jobg, return_ip_result=True)),
                "finished")
    check("gateway job succeeded", done["data"]["job_instance"]["status"] == 3, done)
    r = gw.operate_job_instance(dict(scope, job_instance_id=jobg, operation_code=1))
    check("terminate a finished job -> 1241003", r["code"] == 1241003, r)
    anon_gw = BkJobGateway(endpoint=base + "/api/bk-job", stage="prod")
    try:
        anon_gw.fast_transfer_file(body)
        check("gateway missing credentials raises", False)
    except APIGatewayResponseError as e:
        resp = e.response
        check("gateway missing credentials -> 400 1640001",
              resp is not None and resp.status_code == 400 and resp.json()["code"] == 1640001
              and resp.headers.get("X-Bkapi-Error-Code") == "1640001", str(e))


if __name__ == "__main__":
    main()
