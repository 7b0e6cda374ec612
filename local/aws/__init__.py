"""AWS on this machine: a moto server in this process, the synthesized template deployed into it, and what
moto leaves out done here from the same template: Lambda running the real handlers, API Gateway's REST API,
the event-source mappings, Step Functions executing the deployed definition, the bucket properties moto's
CloudFormation skips. Every patch of moto's internals lives in `moto_patches`.
"""
