// The storage account behind the Function App: the Functions host keeps its state in it and
// the Flex Consumption plan reads the deployment package from a blob container in it. Shared
// keys are disabled, so every client authenticates with Microsoft Entra ID.

@description('Name of the storage account: 3 to 24 lowercase letters and digits.')
param name string

@description('Azure region of the storage account.')
param location string

@description('Tags applied to the storage account.')
param tags object = {}

@description('Name of the blob container that holds the deployment package.')
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // Closing the storage network needs private endpoints with private DNS zones, which are billed
  // by the hour at rest; access stays Entra ID only because shared keys are disabled.
  // checkov:skip=CKV_AZURE_35: Public endpoint kept on purpose; see the comment above.
  // checkov:skip=CKV_AZURE_59: Public endpoint kept on purpose; see the comment above.
  // checkov:skip=CKV_AZURE_206: The account holds only host state and the deployment package, both recreated by `azd deploy`, so locally redundant storage is enough.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    properties: {
      deleteRetentionPolicy: {
        enabled: true
        days: 7
      }
      containerDeleteRetentionPolicy: {
        enabled: true
        days: 7
      }
    }

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
