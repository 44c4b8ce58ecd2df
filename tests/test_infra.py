"""Security properties of the Bicep templates under infra/, read with pycep-parser.

No Bicep compiler runs here, so these tests parse every .bicep file with the same parser that
checkov uses. They assert the properties that lock the deployment down: an HTTPS-only Flex
Consumption app running as a user-assigned identity, a Key Vault that only that identity can
read and only its subnet can reach, one static outbound IP, and no secret in an app setting.

pycep turns an identifier into its bare name and an expression into a tree; `render` writes the
tree back as compact text, so `vnet.outputs.functionSubnetId` reads as it does in the template.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from pycep import BicepParser

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Azure built-in role definition ids (the same in every tenant).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# App settings that the application reads, and the Azure platform settings beside them.
APPLICATION_SETTINGS = {
    "MONGODB_URI",
    "MONGODB_DATABASE",
    "KEY_VAULT_URL",
    "PUBLIC_BASE_URL",
    "SERVER_NAME",
    "NOREPLY_EMAIL",
    "SECRETS_CACHE_SECONDS",
}
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "AZURE_CLIENT_ID",
}


@cache
def parse(relative_path: str) -> dict:
    return BicepParser().parse(file_path=INFRA / relative_path)


def render(expression: object) -> object:
    """Write a pycep expression tree back as compact Bicep-like text. Literals stay as they are."""
    if isinstance(expression, list):
        return [render(item) for item in expression]
    if not isinstance(expression, dict):
        return expression
    if "operator" in expression:
        operator = expression["operator"]
        operands = [render(value) for value in operator["operands"].values()]
        if operator["type"] == "property_accessor":
            return ".".join(str(operand) for operand in operands)
        return f"{operator['type']}({', '.join(str(operand) for operand in operands)})"
    if "function" in expression:
        function = expression["function"]
        arguments = [render(value) for value in function["parameters"].values() if value is not None]
        return f"{function['type']}({', '.join(str(argument) for argument in arguments)})"
    return {key: render(value) for key, value in expression.items()}


def resource(relative_path: str, name: str) -> dict:
    return parse(relative_path)["resources"][name]


def properties(relative_path: str, name: str) -> dict:
    return resource(relative_path, name)["config"]["properties"]


def app_settings() -> dict:
    return properties("app/api.bicep", "appSettings")


def role_assignments() -> list[dict]:
    template = parse("app/rbac.bicep")
    role_ids = template["variables"]["roleIds"]["value"]
    assignments = []
    for name, definition in template["resources"].items():
        if definition["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config = definition["config"]
        if "condition" in config:
            config = config["config"]
        role_reference = render(config["properties"]["roleDefinitionId"])
        role_key = re.fullmatch(r"subscription_resource_id\(Microsoft\.Authorization/roleDefinitions, roleIds\.(\w+)\)",
                                role_reference)
        assert role_key, f"{name} names its role as {role_reference}"
        assignments.append({
            "name": name,
            "scope": config["scope"],
            "principal": config["properties"]["principalId"],
            "role": role_ids[role_key.group(1)],
        })
    return assignments


def test_infra_contains_every_module() -> None:
    assert [path.relative_to(INFRA).as_posix() for path in BICEP_FILES] == [
        "app/api.bicep",
        "app/identity.bicep",
        "app/keyvault.bicep",
        "app/monitoring.bicep",
        "app/rbac.bicep",
        "app/storage.bicep",
        "app/vnet.bicep",
        "main.bicep",
    ]


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda path: path.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    template = parse(path.relative_to(INFRA).as_posix())

    assert template["parameters"]


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda path: path.relative_to(INFRA).as_posix())
def test_every_parameter_has_description(path: Path) -> None:
    parameters = parse(path.relative_to(INFRA).as_posix())["parameters"]

    undescribed = [
        name for name, parameter in parameters.items()
        if not any(decorator["type"] == "description" and decorator["argument"] for decorator in parameter["decorators"])
    ]
    assert undescribed == []


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda path: path.relative_to(INFRA).as_posix())
def test_every_checkov_skip_has_reason(path: Path) -> None:
    skips = re.findall(r"checkov:skip=([A-Z0-9_]+)(.*)", path.read_text())

    for check_id, reason in skips:
        assert re.fullmatch(r": \S.{20,}", reason), f"{check_id} is skipped without a reason"


def test_module_files_exist() -> None:
    modules = parse("main.bicep")["modules"]

    for name, module in modules.items():
        assert (INFRA / module["detail"]["path"]).is_file(), name


def test_names_use_environment_token() -> None:
    template = parse("main.bicep")

    assert render(template["variables"]["resourceToken"]["value"]) == (
        "to_lower(unique_string(subscription().id, environmentName, location))"
    )
    assert template["resources"]["resourceGroup"]["config"]["name"] == "rg-${environmentName}"
    assert template["variables"]["functionAppName"]["value"] == "func-${resourceToken}"
    assert template["variables"]["deploymentContainerName"]["value"] == "app-package-${resourceToken}"
    # Names given as text; the others are module outputs or the variables checked above.
    module_names = [
        value
        for module in template["modules"].values()
        for key, value in module["config"]["params"].items()
        if (key == "name" or key.endswith("Name")) and isinstance(value, str)
        and key not in ("serverName", "deploymentContainerName")
    ]
    assert len(module_names) == 11
    for name in module_names:
        assert name == "functionAppName" or re.fullmatch(r"[a-z]+-?\$\{resourceToken\}", name), name


def test_plan_is_flex_consumption_on_linux() -> None:
    plan = resource("app/api.bicep", "plan")["config"]

    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True


def test_function_app_runs_python_311() -> None:
    site = resource("app/api.bicep", "functionApp")["config"]

    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}


def test_function_app_is_https_only() -> None:
    site_properties = properties("app/api.bicep", "functionApp")

    assert site_properties["httpsOnly"] is True
    assert site_properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert site_properties["siteConfig"]["scmMinTlsVersion"] == "1.2"


def test_function_app_disables_ftp() -> None:
    assert properties("app/api.bicep", "functionApp")["siteConfig"]["ftpsState"] == "Disabled"
    for name in ("ftpBasicAuth", "scmBasicAuth"):
        policy = resource("app/api.bicep", name)
        assert policy["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
        assert policy["config"]["parent"] == "functionApp"
        assert policy["config"]["properties"] == {"allow": False}
    assert {resource("app/api.bicep", name)["config"]["name"] for name in ("ftpBasicAuth", "scmBasicAuth")} == {
        "ftp", "scm",
    }


def test_function_app_uses_user_assigned_identity() -> None:
    site = resource("app/api.bicep", "functionApp")["config"]

    assert site["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {"'${identityId}'": {}}}
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


def test_deployment_storage_uses_identity() -> None:
    storage = properties("app/api.bicep", "functionApp")["functionAppConfig"]["deployment"]["storage"]

    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }


def test_function_app_joins_integration_subnet() -> None:
    assert properties("app/api.bicep", "functionApp")["virtualNetworkSubnetId"] == "functionSubnetId"
    api_params = parse("main.bicep")["modules"]["api"]["config"]["params"]
    assert render(api_params["functionSubnetId"]) == "vnet.outputs.functionSubnetId"


def test_app_settings_match_code_settings() -> None:
    names = set(app_settings())
    settings_source = (ROOT / "cosync" / "settings.py").read_text()

    assert names - PLATFORM_SETTINGS == APPLICATION_SETTINGS
    for name in APPLICATION_SETTINGS:
        assert f'"{name}"' in settings_source, f"cosync/settings.py does not read {name}"


def test_mongodb_uri_is_key_vault_reference() -> None:
    assert app_settings()["MONGODB_URI"] == "@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/mongodb-uri/)"


def test_key_vault_url_is_vault_uri() -> None:
    settings = app_settings()
    api_params = parse("main.bicep")["modules"]["api"]["config"]["params"]

    assert settings["KEY_VAULT_URL"] == "keyVaultUri"
    assert render(api_params["keyVaultUri"]) == "keyVault.outputs.uri"


def test_azure_client_id_names_the_identity() -> None:
    settings = app_settings()
    api_params = parse("main.bicep")["modules"]["api"]["config"]["params"]

    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert render(api_params["identityClientId"]) == "identity.outputs.clientId"


def test_host_storage_uses_identity() -> None:
    settings = app_settings()

    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert "AzureWebJobsStorage" not in settings


def test_application_insights_uses_connection_string() -> None:
    settings = app_settings()

    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_no_secret_in_templates() -> None:
    for path in BICEP_FILES:
        text = path.read_text()
        assert "listKeys(" not in text, path
        assert "AccountKey=" not in text, path
        assert "@secure()" not in text, path


def test_storage_rejects_shared_keys() -> None:
    storage = properties("app/storage.bicep", "storage")

    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["supportsHttpsTrafficOnly"] is True


def test_key_vault_uses_rbac() -> None:
    vault = properties("app/keyvault.bicep", "vault")

    assert vault["enableRbacAuthorization"] is True
    assert "accessPolicies" not in vault


def test_key_vault_keeps_deleted_secrets() -> None:
    vault = properties("app/keyvault.bicep", "vault")

    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["softDeleteRetentionInDays"] == 90


def test_key_vault_admits_only_app_subnet() -> None:
    acls = properties("app/keyvault.bicep", "vault")["networkAcls"]
    keyvault_params = parse("main.bicep")["modules"]["keyVault"]["config"]["params"]

    assert acls["defaultAction"] == "Deny"
    assert acls["bypass"] == "None"
    assert acls["virtualNetworkRules"] == [{"id": "functionSubnetId", "ignoreMissingVnetServiceEndpoint": False}]
    assert render(acls["ipRules"]) == "conditional(empty(operatorIpAddress), [], [{'value': 'operatorIpAddress'}])"
    assert render(keyvault_params["functionSubnetId"]) == "vnet.outputs.functionSubnetId"


def test_identity_gets_only_data_roles() -> None:
    identity_roles = {
        (assignment["scope"], assignment["role"])
        for assignment in role_assignments() if assignment["principal"] == "identityPrincipalId"
    }

    assert identity_roles == {
        ("vault", KEY_VAULT_SECRETS_USER),
        ("storage", STORAGE_BLOB_DATA_OWNER),
        ("applicationInsights", MONITORING_METRICS_PUBLISHER),
    }


def test_only_operator_may_write_secrets() -> None:
    writers = [assignment for assignment in role_assignments() if assignment["role"] == KEY_VAULT_SECRETS_OFFICER]

    assert [(writer["scope"], writer["principal"]) for writer in writers] == [("vault", "operatorPrincipalId")]
    condition = resource("app/rbac.bicep", "operatorKeyVaultSecretsOfficer")["config"]["condition"]
    assert render(condition) == "not(empty(operatorPrincipalId))"


def test_rbac_receives_the_identity_principal() -> None:
    rbac_params = parse("main.bicep")["modules"]["rbac"]["config"]["params"]

    assert render(rbac_params["identityPrincipalId"]) == "identity.outputs.principalId"
    assert render(rbac_params["keyVaultName"]) == "keyVault.outputs.name"


def test_subnet_delegated_to_flex_consumption() -> None:
    subnet = properties("app/vnet.bicep", "vnet")["subnets"][0]["properties"]

    assert subnet["delegations"] == [
        {"name": "flex-consumption", "properties": {"serviceName": "Microsoft.App/environments"}}
    ]


def test_subnet_leaves_through_nat_gateway() -> None:
    subnet = properties("app/vnet.bicep", "vnet")["subnets"][0]["properties"]

    assert render(subnet["natGateway"]) == {"id": "natGateway.id"}
    assert subnet["defaultOutboundAccess"] is False


def test_subnet_has_key_vault_service_endpoint() -> None:
    subnet = properties("app/vnet.bicep", "vnet")["subnets"][0]["properties"]

    assert {"service": "Microsoft.KeyVault"} in subnet["serviceEndpoints"]


def test_nat_gateway_has_one_static_ip() -> None:
    nat_gateway = resource("app/vnet.bicep", "natGateway")["config"]
    public_ip = resource("app/vnet.bicep", "publicIp")["config"]

    assert render(nat_gateway["properties"]["publicIpAddresses"]) == [{"id": "publicIp.id"}]
    assert nat_gateway["sku"] == {"name": "Standard"}
    assert public_ip["sku"]["name"] == "Standard"
    assert public_ip["properties"]["publicIPAllocationMethod"] == "Static"


def test_main_outputs_deployment_facts() -> None:
    outputs = parse("main.bicep")["outputs"]

    assert render(outputs["FUNCTION_BASE_URL"]["value"]) == "api.outputs.baseUrl"
    assert render(outputs["AZURE_OUTBOUND_IP"]["value"]) == "vnet.outputs.outboundIpAddress"
    assert render(outputs["AZURE_KEY_VAULT_NAME"]["value"]) == "keyVault.outputs.name"
    assert render(outputs["AZURE_KEY_VAULT_URI"]["value"]) == "keyVault.outputs.uri"
    assert render(parse("app/vnet.bicep")["outputs"]["outboundIpAddress"]["value"]) == (
        "publicIp.properties.ipAddress"
    )


def test_parameters_file_covers_required_parameters() -> None:
    parameters = parse("main.bicep")["parameters"]
    parameter_values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]

    required = {name for name, parameter in parameters.items() if parameter["default"] is None}
    assert required == {"environmentName", "location", "noreplyEmail"}
    assert required <= set(parameter_values)
    assert set(parameter_values) <= set(parameters)


def test_azure_yaml_runs_atlas_hook() -> None:
    text = (ROOT / "azure.yaml").read_text()

    assert re.search(r"^services:\n  api:\n    project: \.\n    language: python\n    host: function$", text, re.M)
    assert re.search(r"^  postprovision:$", text, re.M)
    assert "python3 -m cosync atlas allow-ip\n" in text
    assert "python -m cosync atlas allow-ip\n" in text
