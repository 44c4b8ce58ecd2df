// Cosync JWT server on Azure: a Python Function App on the Flex Consumption plan, its Key
// Vault, storage, monitoring and network, in one resource group. `azd up` deploys it with
// main.parameters.json; `az deployment sub create` deploys it with the parameters on the
// command line (see docs/deploy.md).

targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the environment (the azd environment name). It names the resource group and, with the subscription and region, seeds the unique token in every other resource name.')
param environmentName string

@minLength(1)
@description('Azure region for all resources; it must offer the Flex Consumption plan (`az functionapp list-flexconsumption-locations`).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the operator who stores the secrets; gets "Key Vault Secrets Officer" on the vault. azd fills it with the signed-in user. Empty assigns no operator role.')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principal that principalId names.')
param principalType string = 'User'

@description('Public IPv4 address or CIDR range from which the operator reaches the Key Vault to store secrets. Empty admits only the Function App subnet.')
param operatorIpAddress string = ''

@minLength(3)
@description('Sender address of the e-mails the server sends (NOREPLY_EMAIL); SendGrid must know it as a verified sender.')
param noreplyEmail string

@description('Name of the MongoDB database (MONGODB_DATABASE).')
param mongodbDatabase string = 'cosyncjwt'

@description('Product name shown in e-mails and tokens (SERVER_NAME).')
param serverName string = 'CosyncJWT'

@description('Base URL for links in e-mails (PUBLIC_BASE_URL), for example behind a custom domain. Empty uses the Function App\'s default https host name.')
param publicBaseUrl string = ''

@minValue(0)
@description('Seconds that a worker keeps secrets read from Key Vault before reading them again (SECRETS_CACHE_SECONDS).')
param secretsCacheSeconds int = 300

@maxValue(1000)
@description('Maximum number of Function App instances.')
param maximumInstanceCount int = 100

@description('Address space of the virtual network, in CIDR notation.')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Address range of the Function App integration subnet, in CIDR notation, inside vnetAddressPrefix.')
param functionSubnetPrefix string = '10.40.0.0/24'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: resourceGroup
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: resourceGroup
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: resourceGroup
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module vnet 'app/vnet.bicep' = {
  name: 'vnet'
  scope: resourceGroup
  params: {
    vnetName: 'vnet-${resourceToken}'
    natGatewayName: 'ng-${resourceToken}'
    publicIpName: 'pip-${resourceToken}'
    networkSecurityGroupName: 'nsg-${resourceToken}'
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    functionSubnetPrefix: functionSubnetPrefix
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: resourceGroup
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    functionSubnetId: vnet.outputs.functionSubnetId
    operatorIpAddress: operatorIpAddress
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: resourceGroup
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: resourceGroup
  // The app reads storage and Key Vault at start, so its roles must exist first.
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    functionSubnetId: vnet.outputs.functionSubnetId
    keyVaultUri: keyVault.outputs.uri
    mongodbDatabase: mongodbDatabase
    publicBaseUrl: publicBaseUrl
    serverName: serverName
    noreplyEmail: noreplyEmail
    secretsCacheSeconds: secretsCacheSeconds
    maximumInstanceCount: maximumInstanceCount
  }
}

// azd stores these outputs in the environment (.azure/<name>/.env), where hooks and
// `python -m cosync atlas allow-ip` read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output FUNCTION_BASE_URL string = api.outputs.baseUrl
output AZURE_OUTBOUND_IP string = vnet.outputs.outboundIpAddress
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
