"""The poller state machine, as synthesized, in the Step Functions backend that executes.

moto's CloudFormation files state machines where executions never run; the same definition (its
references resolved to the deployed function) is created again, under the same name and so the
same ARN, where moto interprets Amazon States Language.
"""

from __future__ import annotations

import json
from typing import Any

from local.aws.deploy import StackDeployer


def install_state_machines(deployer: StackDeployer) -> list[str]:
    sfn = deployer.clients("stepfunctions")
    arns = []
    for name, resource in deployer.template.of_type("AWS::StepFunctions::StateMachine").items():
        props: dict[str, Any] = deployer.resolve(resource["Properties"])
        arn = deployer.physical[name]
        created = sfn.create_state_machine(
            name=arn.rsplit(":", 1)[-1],
            definition=props["DefinitionString"],
            roleArn=props["RoleArn"],
            type=props.get("StateMachineType", "STANDARD"),
            tracingConfiguration={"enabled": bool(props.get("TracingConfiguration", {}).get("Enabled"))},
        )
        if created["stateMachineArn"] != arn:
            raise RuntimeError(f"state machine ARN changed: {created['stateMachineArn']} != {arn}")
        json.loads(props["DefinitionString"])  # fail here, not at the first execution, if it is not JSON
        arns.append(arn)
    return arns
